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
//     context's error and records nothing;
//   - the sliding-window counter and GCRA, on cases worked out by hand from
//     their definitions at store.Algorithm: the counter at the edges of fixed
//     windows (aligned to the Unix epoch) and its weighting of the previous
//     window, GCRA's burst above and below the limit, refill, whole tokens
//     remaining and reset until full, and Undo for each (a counter hit of
//     the previous fixed window; a GCRA refund, never past a full bucket);
//   - for those two, the rules above that apply: bad input (a Burst on
//     another algorithm, a limit, burst or cost above MaxCounterLimit or the
//     capacity) records nothing, limits beyond the sliding log's bounds work,
//     concurrent hits on a fresh key admit exactly the capacity, keys, names
//     and algorithms are independent (the same key and name under two
//     algorithms are two states), and context errors record nothing;
//   - for every algorithm, on states built by uneven histories (large counts
//     included), RetryAfter is the least wait: the request is denied a
//     microsecond earlier and allowed at it; and ResetAfter is exact in the
//     same way;
//   - HitAll: all parts or none; a denied stack records nothing and reports
//     each part's state, with RetryAfter only on the parts that did not fit;
//     a one-part stack decides as Hit; stacks mix algorithms; each allowed
//     part's receipt undoes that part; bad input (len(out) not len(hits), an
//     empty stack, more than 16 parts, a duplicate key, name and algorithm,
//     an invalid part) records nothing; 200 concurrent stacks of 5 per
//     minute and 20 per hour on one key admit exactly 5 and leave both
//     rules holding exactly the admitted hits, and on two keys (apart on a
//     Cluster) leave both holding exactly the admitted hits once HitAll
//     returned.
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
