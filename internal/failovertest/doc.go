// Package failovertest holds sluice's failover scenarios: tests that kill
// the master of a Redis Cluster shard and of a Sentinel group (kill -9)
// while several application instances, each with its own go-redis client,
// decide rate limits and take locks, and that report what the failover cost:
// the time until decisions succeed again, the errors meanwhile by fail mode,
// hits admitted beyond the limit, lost locks, and whether fences kept
// increasing.
//
// The tests need the servers that scripts/failover-bed.sh starts (a Cluster
// of 3 masters with a replica each, and a Sentinel group of a master, a
// replica and 3 Sentinels on the same machine), and skip, saying so, when
// its variables (FAILOVER_CLUSTER_ADDRS, FAILOVER_SENTINEL_ADDRS,
// FAILOVER_SENTINEL_MASTER) are unset. Run them with
//
//	make test-failover
//
// Each scenario restores the deployment it broke (the killed node comes back
// empty as a replica) before the next one starts. docs/failover.md states
// the figures of a run.
package failovertest
