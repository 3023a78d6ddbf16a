//! Ring protocol tests with both ends in user space. No root, no kernel;
//! these are the tests meant for miri.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::HeapRing;

#[test]
fn fifo_order_and_counts() {
    let (mut p, mut c) = HeapRing::pair::<u64>(8, 0);
    let mut r = p.reserve(5);
    assert_eq!(r.capacity(), 5);
    for v in 10..15 {
        r.push(v).unwrap();
    }
    assert_eq!(r.commit(), 5);
    let got: Vec<u64> = c.peek(16).collect();
    assert_eq!(got, vec![10, 11, 12, 13, 14]);
    assert_eq!(c.peek(16).len(), 0, "ring empty after reading everything");
}

#[test]
fn full_ring_reserves_nothing_until_consumer_releases() {
    let (mut p, mut c) = HeapRing::pair::<u32>(4, 0);
    let mut r = p.reserve(10);
    assert_eq!(r.capacity(), 4, "reserve is a burst: as many as fit");
    for v in 0..4 {
        r.push(v).unwrap();
    }
    assert_eq!(r.push(99), Err(99), "a full batch gives the value back");
    r.commit();
    assert_eq!(p.reserve(1).capacity(), 0, "full");
    {
        let mut b = c.peek(2);
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.next(), Some(1));
    } // released on drop
    assert_eq!(p.reserve(4).capacity(), 2);
}

#[test]
fn wraps_across_u32_max() {
    let start = u32::MAX - 5;
    let (mut p, mut c) = HeapRing::pair::<u64>(8, start);
    let mut expect = 0u64;
    let mut next = 0u64;
    for _ in 0..10 {
        let mut r = p.reserve(7);
        while r.remaining() > 0 {
            r.push(next).unwrap();
            next += 1;
        }
        r.commit();
        for v in c.peek(7) {
            assert_eq!(v, expect);
            expect += 1;
        }
    }
    assert_eq!(expect, 70);
}

#[test]
fn partial_commit_gives_back_unwritten_slots() {
    let (mut p, mut c) = HeapRing::pair::<u32>(8, 0);
    let mut r = p.reserve(6);
    r.push(1).unwrap();
    r.push(2).unwrap();
    assert_eq!(r.commit(), 2);
    assert_eq!(p.free(8), 6, "four unwritten slots came back");
    assert_eq!(c.peek(8).collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn dropped_reserve_cancels_everything() {
    let (mut p, mut c) = HeapRing::pair::<u32>(8, 0);
    {
        let mut r = p.reserve(3);
        r.push(7).unwrap();
        assert_eq!(r.get(0), Some(7));
        assert_eq!(r.get(1), None);
    } // not committed
    assert_eq!(c.peek(8).len(), 0, "nothing was published");
    assert_eq!(p.free(8), 8);
    let mut r = p.reserve(1);
    r.push(8).unwrap();
    r.commit();
    assert_eq!(
        c.peek(8).collect::<Vec<_>>(),
        vec![8],
        "the cancelled slot was reused"
    );
}

#[test]
fn unread_entries_stay_in_the_ring() {
    let (mut p, mut c) = HeapRing::pair::<u32>(8, 0);
    let mut r = p.reserve(4);
    for v in 0..4 {
        r.push(v).unwrap();
    }
    r.commit();
    {
        let mut b = c.peek(4);
        assert_eq!(b.len(), 4);
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.release(), 1);
    }
    assert_eq!(p.free(8), 5, "only the read entry was released");
    assert_eq!(c.peek(8).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn need_wakeup_flag_is_seen_by_the_producer() {
    let (p, c) = HeapRing::pair::<u64>(4, 0);
    assert!(!p.needs_wakeup());
    c.set_need_wakeup(true);
    assert!(p.needs_wakeup());
    c.set_need_wakeup(false);
    assert!(!p.needs_wakeup());
}

#[test]
fn in_flight_counts_published_unconsumed() {
    let (mut p, mut c) = HeapRing::pair::<u64>(8, 3);
    let mut r = p.reserve(3);
    for v in 0..3 {
        r.push(v).unwrap();
    }
    r.commit();
    assert_eq!(p.in_flight(), 3);
    let _ = c.peek(2).count();
    assert_eq!(p.in_flight(), 1);
}

#[test]
fn two_threads_pass_a_million_entries_in_order() {
    // A real concurrent exchange: the Release/Acquire pairs must make every
    // entry visible intact and in order. Kept short for miri.
    let total: u64 = if cfg!(miri) { 2_000 } else { 1_000_000 };
    let (mut p, mut c) = HeapRing::pair::<u64>(64, u32::MAX - 100);
    let producer = std::thread::spawn(move || {
        let mut next = 0u64;
        while next < total {
            let mut r = p.reserve(16);
            while r.remaining() > 0 && next < total {
                r.push(next.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap();
                next += 1;
            }
            r.commit();
            std::hint::spin_loop();
        }
    });
    let mut expect = 0u64;
    while expect < total {
        for v in c.peek(32) {
            assert_eq!(v, expect.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            expect += 1;
        }
        std::hint::spin_loop();
    }
    producer.join().unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Produce { n: u32, write: u32, commit: bool },
    Consume { n: u32, read: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..20, 0u32..20, any::<bool>()).prop_map(|(n, write, commit)| Op::Produce {
            n,
            write,
            commit
        }),
        (0u32..20, 0u32..20).prop_map(|(n, read)| Op::Consume { n, read }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]

    /// Any sequence of partial reserves, commits, cancels and partial reads
    /// behaves like a bounded FIFO, from any starting index (wrap included).
    #[test]
    fn behaves_like_a_bounded_fifo(start in any::<u32>(), size_log in 0u32..5, ops in proptest::collection::vec(op(), 1..64)) {
        let size = 1u32 << size_log;
        let (mut p, mut c) = HeapRing::pair::<u64>(size, start);
        let mut model: VecDeque<u64> = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Produce { n, write, commit } => {
                    let free = size as usize - model.len();
                    let mut r = p.reserve(n);
                    prop_assert_eq!(r.capacity() as usize, (n as usize).min(free));
                    let mut pending = Vec::new();
                    for _ in 0..write.min(r.capacity()) {
                        r.push(next).unwrap();
                        pending.push(next);
                        next += 1;
                    }
                    if commit {
                        prop_assert_eq!(r.commit() as usize, pending.len());
                        model.extend(pending);
                    }
                }
                Op::Consume { n, read } => {
                    let mut b = c.peek(n);
                    // The consumer re-reads the shared producer index only when
                    // its cached view is empty (libxdp's rule), so it may see
                    // fewer entries than exist, but never none when some exist.
                    prop_assert!(b.len() as usize <= (n as usize).min(model.len()));
                    prop_assert_eq!(b.is_empty(), n == 0 || model.is_empty());
                    let take = read.min(b.len());
                    for _ in 0..take {
                        prop_assert_eq!(b.next(), model.pop_front());
                    }
                }
            }
        }
        let mut rest = Vec::new();
        loop {
            let b = c.peek(u32::MAX);
            if b.is_empty() {
                break;
            }
            rest.extend(b);
        }
        prop_assert_eq!(rest, Vec::from(model));
    }
}
