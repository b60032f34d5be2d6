//! Time of one weight solve per method, for K = 2, 10 and 50 tasks on conflicting gradients.
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use solvers::{combine, CombinerConfig, Jacobian, Method, Solver, SquaredGradientSum, TaskInput, Tracked};
use std::hint::black_box;

/// Random gradients sharing a common component, so some pairs conflict and some agree.
fn problem(k: usize, p: usize, seed: u64) -> (Jacobian, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let common: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let data = (0..k)
        .flat_map(|_| {
            let scale = 10f64.powf(rng.gen_range(-1.0..1.0));
            (0..p).map(|j| scale * (0.5 * common[j] + rng.gen_range(-1.0..1.0))).collect::<Vec<_>>()
        })
        .collect();
    let losses = (0..k).map(|_| rng.gen_range(0.1..10.0)).collect();
    (Jacobian::new(k, p, data).expect("finite"), losses)
}

fn configs() -> Vec<(String, CombinerConfig)> {
    let mut configs: Vec<(String, CombinerConfig)> =
        Method::ALL.iter().map(|&m| (m.to_string(), CombinerConfig::new(m))).collect();
    for (name, method, solver) in [("fairgrad-exact", Method::FairGrad, Solver::Exact), ("cagrad-exact", Method::Cagrad, Solver::Exact)] {
        configs.push((name.to_string(), CombinerConfig { solver: Some(solver), ..CombinerConfig::new(method) }));
    }
    configs
}

fn bench(c: &mut Criterion) {
    for k in [2, 10, 50] {
        let (jacobian, losses) = problem(k, 256, k as u64);
        let gram = jacobian.gram();
        let tracked = Tracked::zero(k);
        let risks = SquaredGradientSum::zeros(k, jacobian.p()).excess_risks(&jacobian);
        let input = TaskInput { gram: Some(&gram), losses: Some(&losses), jacobian: Some(&jacobian), tracked: Some(&tracked), excess_risks: Some(&risks) };
        let mut group = c.benchmark_group(format!("K={k}"));
        for (name, config) in configs() {
            let Ok(mut combiner) = config.build(k) else {
                continue; // e.g. banditmtl's default radius exceeds log K for K = 2
            };
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            group.bench_with_input(BenchmarkId::from_parameter(&name), &input, |b, input| {
                b.iter(|| black_box(combine(combiner.as_mut(), k, input, &mut rng).expect("solves")))
            });
        }
        // A warm-started CCP step on a repeated problem stops at once: time the first step.
        let nash_ccp = CombinerConfig { solver: Some(Solver::Ccp), ..CombinerConfig::new(Method::Nash) };
        group.bench_with_input(BenchmarkId::from_parameter("nash-ccp (one step, cold)"), &input, |b, input| {
            b.iter_batched(
                || nash_ccp.build(k).expect("builds"),
                |mut combiner| black_box(combine(combiner.as_mut(), k, input, &mut ChaCha8Rng::seed_from_u64(0)).expect("solves")),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_millis(200)).measurement_time(std::time::Duration::from_millis(600));
    targets = bench
}
criterion_main!(benches);
