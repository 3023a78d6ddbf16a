//! Properties of the ring's index math, through the public API, with both
//! ends in user space ([`HeapRing`]): the free-running u32 indices and their
//! wrap, the producer's `cached_cons = consumer + size` trick, the consumer's
//! lazy refresh, and batches that are cancelled or partly used. The in-crate
//! `ring::tests` check FIFO behaviour (and run under miri); these add the
//! counting invariants and random concurrent schedules.

use std::collections::VecDeque;

use pktio::ring::HeapRing;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Reserve `n`, write `write`, commit or cancel.
    Produce { n: u32, write: u32, commit: bool },
    /// Peek `n`, read `read`.
    Consume { n: u32, read: u32 },
    /// Ask for `want` free slots.
    Free { want: u32 },
}

fn op(max: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..=max, 0..=max, any::<bool>()).prop_map(|(n, write, commit)| Op::Produce {
            n,
            write,
            commit
        }),
        (0..=max, 0..=max).prop_map(|(n, read)| Op::Consume { n, read }),
        (0..=max).prop_map(|want| Op::Free { want }),
    ]
}

/// Starting indices that matter: anywhere, and just below the wrap.
fn start() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..4096).prop_map(|k| u32::MAX - k)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// After every operation: a refreshed `free` is exactly the size minus
    /// what is in the ring, `in_flight` is exactly what is in the ring, a
    /// cached `free` never over-reports, and reserve/peek never hand out more
    /// than exists.
    #[test]
    fn counts_are_exact_across_the_wrap(
        start in start(),
        size_log in 0u32..8,
        ops in proptest::collection::vec(op(300), 1..128),
    ) {
        let size = 1u32 << size_log;
        let (mut p, mut c) = HeapRing::pair::<u32>(size, start);
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut next = 0u32;
        for op in ops {
            match op {
                Op::Produce { n, write, commit } => {
                    let mut r = p.reserve(n);
                    let free = size - model.len() as u32;
                    prop_assert_eq!(r.capacity(), n.min(free), "reserve is a burst of what is free");
                    let mut pending = Vec::new();
                    while r.written() < write.min(r.capacity()) {
                        prop_assert!(r.push(next).is_ok());
                        pending.push(next);
                        next = next.wrapping_add(1);
                    }
                    prop_assert_eq!(r.remaining(), r.capacity() - r.written());
                    if commit {
                        prop_assert_eq!(r.commit(), pending.len() as u32);
                        model.extend(pending);
                    }
                }
                Op::Consume { n, read } => {
                    let mut b = c.peek(n);
                    prop_assert!(b.len() <= n.min(model.len() as u32));
                    // Lazy refresh: fewer than exist is fine, none is not.
                    prop_assert_eq!(b.is_empty(), n == 0 || model.is_empty());
                    for _ in 0..read.min(b.len()) {
                        prop_assert_eq!(b.next(), model.pop_front());
                    }
                }
                Op::Free { want } => {
                    let truth = size - model.len() as u32;
                    let f = p.free(want);
                    prop_assert!(f <= truth, "cached free {} over-reports {}", f, truth);
                    if f < want {
                        prop_assert_eq!(f, truth, "a refreshed view is exact");
                    }
                }
            }
            prop_assert_eq!(p.in_flight(), model.len() as u32);
            prop_assert_eq!(p.free(u32::MAX), size - model.len() as u32);
            prop_assert_eq!(c.available(u32::MAX) == 0, model.is_empty());
        }
    }

    /// A cancelled batch leaves no trace: the consumer never sees its values,
    /// and the very same slots are handed out again.
    #[test]
    fn cancelled_batches_leave_no_trace(
        start in start(),
        size_log in 1u32..7,
        fill in 0u32..64,
        cancel in 1u32..64,
    ) {
        let size = 1u32 << size_log;
        let (mut p, mut c) = HeapRing::pair::<u64>(size, start);
        let fill = fill.min(size);
        let mut r = p.reserve(fill);
        for v in 0..fill {
            r.push(u64::from(v)).unwrap();
        }
        r.commit();
        let free_before = p.free(u32::MAX);
        {
            let mut r = p.reserve(cancel);
            while r.push(u64::MAX).is_ok() {}
        } // dropped: cancelled
        prop_assert_eq!(p.free(u32::MAX), free_before);
        prop_assert_eq!(p.in_flight(), fill);
        let got: Vec<u64> = c.peek(u32::MAX).collect();
        prop_assert_eq!(got, (0..u64::from(fill)).collect::<Vec<_>>());
        prop_assert_eq!(c.peek(u32::MAX).len(), 0, "no cancelled value leaked");
    }

    /// Unread entries of a batch stay in the ring, in order; only read ones
    /// are released to the producer.
    #[test]
    fn partial_reads_release_exactly_what_was_read(
        start in start(),
        n in 1u32..64,
        reads in proptest::collection::vec(0u32..16, 1..16),
    ) {
        let size = 64u32;
        let (mut p, mut c) = HeapRing::pair::<u32>(size, start);
        let mut r = p.reserve(n);
        for v in 0..n {
            r.push(v).unwrap();
        }
        r.commit();
        let mut expect = 0u32;
        for k in reads {
            let mut b = c.peek(u32::MAX);
            let take = k.min(b.len());
            for _ in 0..take {
                prop_assert_eq!(b.next(), Some(expect));
                expect += 1;
            }
            prop_assert_eq!(b.release(), take);
            prop_assert_eq!(p.in_flight(), n - expect);
            prop_assert_eq!(p.free(u32::MAX), size - (n - expect));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Two threads, random batch sizes on both sides, any start: every
    /// value arrives once, intact and in order (the Release/Acquire pairs
    /// of the index words carry the entries across).
    #[test]
    fn concurrent_random_batches_keep_fifo_order(
        start in start(),
        size_log in 0u32..9,
        prod_batches in proptest::collection::vec(1u32..300, 1..32),
        cons_batches in proptest::collection::vec(1u32..300, 1..32),
    ) {
        const TOTAL: u64 = 50_000;
        let size = 1u32 << size_log;
        let (mut p, mut c) = HeapRing::pair::<u64>(size, start);
        let producer = std::thread::spawn(move || {
            let mut next = 0u64;
            let mut i = 0;
            while next < TOTAL {
                let mut r = p.reserve(prod_batches[i % prod_batches.len()]);
                i += 1;
                while r.remaining() > 0 && next < TOTAL {
                    r.push(next ^ 0x5a5a_5a5a_5a5a_5a5a).unwrap();
                    next += 1;
                }
                r.commit();
                std::hint::spin_loop();
            }
            p
        });
        let mut expect = 0u64;
        let mut i = 0;
        while expect < TOTAL {
            for v in c.peek(cons_batches[i % cons_batches.len()]) {
                assert_eq!(v ^ 0x5a5a_5a5a_5a5a_5a5a, expect);
                expect += 1;
            }
            i += 1;
            std::hint::spin_loop();
        }
        let p = producer.join().unwrap();
        prop_assert_eq!(p.in_flight(), 0);
        prop_assert_eq!(c.peek(u32::MAX).len(), 0);
    }
}

#[test]
fn need_wakeup_is_what_the_consumer_side_set() {
    let (p, c) = HeapRing::pair::<u64>(8, u32::MAX);
    for on in [true, false, true, false] {
        c.set_need_wakeup(on);
        assert_eq!(p.needs_wakeup(), on);
        assert_eq!(c.needs_wakeup(), on);
    }
}

#[test]
fn reserve_larger_than_the_ring_is_capped_at_the_ring() {
    for size_log in 0..12 {
        let size = 1u32 << size_log;
        let (mut p, _c) = HeapRing::pair::<u32>(size, u32::MAX - 3);
        assert_eq!(p.reserve(u32::MAX).capacity(), size);
        assert_eq!(
            p.free(u32::MAX),
            size,
            "the cancelled reserve gave everything back"
        );
        assert_eq!(p.size(), size);
    }
}
