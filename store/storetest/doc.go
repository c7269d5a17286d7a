// Package storetest is the conformance suite for implementations of
// store.Store, in the manner of testing/fstest: an implementation's tests call
// Run with a Backend that makes fresh stores, and every rule of the store
// contract runs as its own named subtest, so a failure names the broken rule.
//
// The suite checks:
//
//   - bad input (empty key or token, limit or cost not positive, cost above
//     the limit, window or lock TTL below one millisecond) is an error wrapping
//     store.ErrInvalidArgument and records nothing;
//   - exact counting: Remaining counts down to zero and stays there on
//     denials, the Limit field echoes the rule, cost greater than one counts
//     as that many hits, and a denial records nothing;
//   - the window (now-window, now] slides with the clock: a hit at exactly
//     now-window has left it;
//   - RetryAfter and ResetAfter are exact (to the microsecond) under a
//     controlled clock, including a denial whose cost needs more than the
//     oldest hit to leave;
//   - Undo gives capacity back, removes exactly the receipt's hits, ignores a
//     zero receipt, rejects any other receipt without both an ID and a
//     positive cost with store.ErrInvalidArgument, and does not fail once the
//     hits left the window;
//   - concurrency: 200 simultaneous hits on a fresh key admit exactly the
//     limit, with the store's own clock and with a frozen clock (hits in the
//     same instant are distinct hits), and one of many concurrent acquires of
//     a lock wins;
//   - keys: different keys are independent, a 1 MB key and keys with hash-tag
//     braces work, and a window and a lock with the same key do not interfere;
//   - locks: acquire, held by another (with the holder's TTL), release and
//     extend only by the owner, no re-creation by Extend after expiry,
//     same-token re-acquire renews, fences strictly increase across acquires,
//     releases and expiry, and TTL reports ErrNotHeld to a non-holder;
//   - with Backend.FenceTTL set: after a burst of acquires on a frozen clock
//     runs the fences ahead of the clock, fences still increase once the
//     fence counter's TTL has passed, whether the next call is an Acquire or
//     the Release of a lock taken before;
//   - an already cancelled or expired context fails every method with the
//     context's error and records nothing.
//
// Time is controlled: the suite passes each store a fake clock for its sliding
// window and moves that clock instead of sleeping; moving a window does not
// call Backend.Elapse. Lock TTLs run down by the same clock and, when
// Backend.Elapse is set (for stores whose locks expire on a server's own
// clock), by Elapse too; lock TTLs in the suite are short
// (150ms), so a real-time Elapse keeps the suite quick. Windows are at least a
// minute long, so that a server expiring keys on its own clock never drops a
// window while a subtest runs.
//
// Subtests do not run in parallel, because Elapse may move the clock of a
// server shared by every store the Backend makes. Each subtest uses its own
// store and keys made unique with the test's name and a random suffix.
//
// The suite uses only the standard library.
package storetest
