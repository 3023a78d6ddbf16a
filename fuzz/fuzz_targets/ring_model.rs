//! The shared-memory ring under arbitrary sequences of reserve / write /
//! commit / cancel / peek / partial read, from any starting index (so across
//! the 2³² wrap), checked against a bounded FIFO: nothing lost, duplicated,
//! reordered or overwritten, free space and in-flight counts exact.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pktio::ring::HeapRing;

#[derive(Debug, Arbitrary)]
enum Op {
    Produce {
        n: u8,
        write: u8,
        commit: bool,
    },
    Consume {
        n: u8,
        read: u8,
    },
    /// Read with `Peek::release`, which ends the batch early.
    ConsumeRelease {
        n: u8,
        read: u8,
    },
    Free {
        want: u8,
    },
    Wakeup(bool),
}

#[derive(Debug, Arbitrary)]
struct Input {
    start: u32,
    size_log: u8,
    ops: Vec<Op>,
}

fuzz_target!(|i: Input| {
    let size = 1u32 << (i.size_log % 8);
    let (mut p, mut c) = HeapRing::pair::<u64>(size, i.start);
    let mut model: VecDeque<u64> = VecDeque::new();
    let mut next = 0u64;
    for op in i.ops {
        match op {
            Op::Produce { n, write, commit } => {
                let free = size as usize - model.len();
                let mut r = p.reserve(u32::from(n));
                assert_eq!(r.capacity() as usize, usize::from(n).min(free));
                let mut pending = Vec::new();
                for _ in 0..u32::from(write).min(r.capacity()) {
                    assert!(r.push(next).is_ok());
                    pending.push(next);
                    next += 1;
                }
                if r.remaining() == 0 {
                    assert_eq!(r.push(u64::MAX), Err(u64::MAX));
                }
                for (k, v) in pending.iter().enumerate() {
                    assert_eq!(r.get(k as u32), Some(*v));
                }
                if commit {
                    assert_eq!(r.commit() as usize, pending.len());
                    model.extend(pending);
                }
            }
            Op::Consume { n, read } | Op::ConsumeRelease { n, read } => {
                let release = matches!(op, Op::ConsumeRelease { .. });
                let mut b = c.peek(u32::from(n));
                assert!(b.len() as usize <= usize::from(n).min(model.len()));
                assert_eq!(b.is_empty(), n == 0 || model.is_empty());
                for _ in 0..u32::from(read).min(b.len()) {
                    assert_eq!(b.next(), model.pop_front());
                }
                if release {
                    let read = b.len() - b.remaining();
                    assert_eq!(b.release(), read);
                }
            }
            Op::Free { want } => {
                let free = p.free(u32::from(want));
                assert!(free as usize <= size as usize);
                if free < u32::from(want) {
                    // A refreshed view is exact.
                    assert_eq!(free as usize, size as usize - model.len());
                }
                assert_eq!(p.in_flight() as usize, model.len());
            }
            Op::Wakeup(on) => {
                c.set_need_wakeup(on);
                assert_eq!(p.needs_wakeup(), on);
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
    assert_eq!(rest, Vec::from(model));
    assert_eq!(p.in_flight(), 0);
    assert_eq!(p.free(size), size);
});
