//! Ring operations per entry, by batch size (DPDK's test_ring_perf idea):
//! producer reserve → push → commit and consumer peek → read → release on
//! one thread, over a ring in ordinary memory. `cargo bench -p pktio`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pktio::ring::HeapRing;

fn ring_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring/round-trip");
    for batch in [1u32, 8, 32, 64, 256] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            let (mut p, mut cons) = HeapRing::pair::<u64>(2048, 0);
            let mut v = 0u64;
            b.iter(|| {
                let mut r = p.reserve(batch);
                while r.remaining() > 0 {
                    let _ = r.push(v);
                    v = v.wrapping_add(1);
                }
                r.commit();
                let mut sum = 0u64;
                for x in cons.peek(batch) {
                    sum = sum.wrapping_add(x);
                }
                std::hint::black_box(sum)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, ring_round_trip);
criterion_main!(benches);
