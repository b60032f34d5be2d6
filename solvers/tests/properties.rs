//! Properties in the style of TorchJD's aggregator tests, on sampled and scaled problems.
mod common;

use common::{all_configs, solve};
use proptest::prelude::*;
use solvers::methods::{fairgrad_root, min_norm_weights, project_weights};
use solvers::{combine, CombinerConfig, GradientAverage, Jacobian, Method, Solver, SquaredGradientSum, TaskInput};

/// A K x P Jacobian with rows scaled by `10^e`, `e` in `[-log_scale, log_scale]`, and positive losses.
fn problem(log_scale: f64) -> impl Strategy<Value = (Jacobian, Vec<f64>)> {
    (1usize..8, 1usize..12).prop_flat_map(move |(k, p)| {
        (
            proptest::collection::vec(-1.0f64..1.0, k * p),
            proptest::collection::vec(-log_scale..=log_scale, k),
            proptest::collection::vec(0.01f64..10.0, k),
        )
            .prop_map(move |(data, exponents, losses)| {
                let rows: Vec<Vec<f64>> = data
                    .chunks(p)
                    .zip(&exponents)
                    .map(|(row, e)| row.iter().map(|x| x * 10f64.powf(*e)).collect())
                    .collect();
                (Jacobian::from_rows(&rows).unwrap(), losses)
            })
    })
}

/// Well-conditioned: more coordinates than tasks, so the Gram is positive definite.
fn full_rank_problem() -> impl Strategy<Value = (Jacobian, Vec<f64>)> {
    problem(0.5).prop_filter("rank K", |(j, _)| j.p() >= j.k() + 2 && j.k() >= 2)
}

fn gram_times(j: &Jacobian, w: &[f64]) -> Vec<f64> {
    let m = j.gram();
    let m = m.matrix();
    (0..j.k()).map(|i| (0..j.k()).map(|l| m[(i, l)] * w[l]).sum()).collect()
}

fn permuted(j: &Jacobian, losses: &[f64], order: &[usize]) -> (Jacobian, Vec<f64>) {
    let rows: Vec<Vec<f64>> = j.rows().map(<[f64]>::to_vec).collect();
    let rows: Vec<Vec<f64>> = order.iter().map(|&i| rows[i].clone()).collect();
    (Jacobian::from_rows(&rows).unwrap(), order.iter().map(|&i| losses[i]).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_method_gives_k_finite_weights((j, losses) in problem(1.0)) {
        for config in all_configs() {
            let Some(result) = solve(&config, &j, &losses, 1) else { continue };
            let combination = result.unwrap_or_else(|e| panic!("{config:?}: {e}"));
            prop_assert_eq!(combination.weights.len(), j.k());
            prop_assert!(combination.weights.iter().all(|w| w.is_finite()), "{:?}: {:?}", config, combination);
        }
    }

    #[test]
    fn badly_scaled_grams_give_finite_weights((j, losses) in problem(6.0)) {
        for config in all_configs() {
            let Some(result) = solve(&config, &j, &losses, 2) else { continue };
            let combination = result.unwrap_or_else(|e| panic!("{config:?}: {e}"));
            prop_assert!(combination.weights.iter().all(|w| w.is_finite()), "{:?}: {:?}", config, combination);
        }
    }

    #[test]
    fn deterministic_methods_are_permutation_equivariant(
        (j, losses) in full_rank_problem(),
        shuffle_seed in any::<u64>(),
    ) {
        use rand::{seq::SliceRandom, SeedableRng};
        let mut order: Vec<usize> = (0..j.k()).collect();
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(shuffle_seed));
        let (pj, plosses) = permuted(&j, &losses, &order);
        let random = [Method::Pcgrad, Method::Rlw, Method::GradDrop, Method::GradVac];
        for config in all_configs().into_iter().filter(|c| !random.contains(&c.method)) {
            let Some(result) = solve(&config, &j, &losses, 3) else { continue };
            let combination = result.unwrap();
            let permuted_combination = solve(&config, &pj, &plosses, 3).unwrap().unwrap();
            // A fallback's weights are a substitute (Nash-MTL CCP keeps its previous weights on a
            // program it finds infeasible), and near Pareto-stationarity rounding can decide
            // feasibility differently for another order: only solved weights must be permuted.
            if combination.fallback.is_some() || permuted_combination.fallback.is_some() {
                continue;
            }
            let (w, pw) = (combination.weights, permuted_combination.weights);
            for (slot, &task) in order.iter().enumerate() {
                let tolerance = 1e-6 * (1.0 + w[task].abs());
                prop_assert!((pw[slot] - w[task]).abs() <= tolerance, "{:?}: {:?} vs {:?} permuted by {:?}", config, w, pw, order);
            }
        }
    }

    #[test]
    fn fairgrad_exact_solves_its_equation((j, _) in full_rank_problem(), alpha in 0.25f64..4.0) {
        let (w, fallback) = fairgrad_root(j.gram().matrix(), alpha, None);
        prop_assert!(fallback.is_none());
        let residual: f64 = gram_times(&j, &w).iter().zip(&w).map(|(mw, wi)| (mw - wi.powf(-1.0 / alpha)).powi(2)).sum();
        prop_assert!(residual.sqrt() < 1e-8, "residual {} at {:?}", residual.sqrt(), w);
        // Non-conflicting: every task's gradient has a positive inner product with d.
        prop_assert!(gram_times(&j, &w).iter().all(|x| *x > 0.0));
    }

    #[test]
    fn nash_equals_fairgrad_exact_at_alpha_one((j, losses) in full_rank_problem()) {
        let nash = solve(&CombinerConfig::new(Method::Nash), &j, &losses, 0).unwrap().unwrap().weights;
        let fairgrad = CombinerConfig { alpha: Some(1.0), solver: Some(Solver::Exact), ..CombinerConfig::new(Method::FairGrad) };
        let fairgrad = solve(&fairgrad, &j, &losses, 0).unwrap().unwrap().weights;
        for (a, b) in nash.iter().zip(&fairgrad) {
            prop_assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0));
        }
    }

    #[test]
    fn fairgrad_exact_scales_as_the_theory_says((j, _) in full_rank_problem(), alpha in 0.5f64..3.0, log_s in -6.0f64..6.0) {
        let s = 10f64.powf(log_s);
        let m = j.gram().matrix().clone();
        let (w, _) = fairgrad_root(&m, alpha, None);
        let (ws, _) = fairgrad_root(&(m * s), alpha, None);
        let factor = s.powf(-alpha / (alpha + 1.0));
        for (a, b) in w.iter().zip(&ws) {
            prop_assert!((a * factor - b).abs() <= 1e-8 * b.abs());
        }
    }

    #[test]
    fn mgda_satisfies_kkt((j, _) in problem(2.0)) {
        let m = j.gram();
        let (w, fallback) = min_norm_weights(m.matrix());
        prop_assert!(fallback.is_none());
        prop_assert!(w.iter().all(|x| *x >= 0.0));
        prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mw = gram_times(&j, &w);
        let norm_sq: f64 = mw.iter().zip(&w).map(|(a, b)| a * b).sum();
        let scale = m.matrix().diagonal().max();
        for (i, x) in mw.iter().enumerate() {
            // Optimality: no vertex improves on the min-norm point; complementary slackness.
            prop_assert!(*x >= norm_sq - 1e-9 * scale, "task {i}: {x} < {norm_sq}");
            if w[i] > 1e-9 {
                prop_assert!((x - norm_sq).abs() <= 1e-9 * scale);
            }
        }
    }

    #[test]
    fn cagrad_exact_is_no_worse_than_any_vertex_or_the_mean((j, losses) in full_rank_problem(), c in 0.1f64..2.0) {
        // Recover p from the weights: w = (1/K + lambda p) / (1 + c^2).
        let objective = |p: &[f64]| {
            let k = j.k() as f64;
            let b0 = vec![1.0 / k; j.k()];
            let g0_sq: f64 = gram_times(&j, &b0).iter().zip(&b0).map(|(a, b)| a * b).sum();
            let mp = gram_times(&j, p);
            let linear: f64 = gram_times(&j, &b0).iter().zip(p).map(|(a, b)| a * b).sum();
            linear + c * g0_sq.sqrt() * mp.iter().zip(p).map(|(a, b)| a * b).sum::<f64>().max(0.0).sqrt()
        };
        let exact = CombinerConfig { c: Some(c), solver: Some(Solver::Exact), ..CombinerConfig::new(Method::Cagrad) };
        let w = solve(&exact, &j, &losses, 0).unwrap().unwrap().weights;
        let k = j.k() as f64;
        let excess: Vec<f64> = w.iter().map(|x| (x * (1.0 + c * c) - 1.0 / k).max(0.0)).collect();
        let total: f64 = excess.iter().sum();
        prop_assume!(total > 1e-9);
        let p: Vec<f64> = excess.iter().map(|x| x / total).collect();
        let best = objective(&p);
        for vertex in 0..j.k() {
            let mut e = vec![0.0; j.k()];
            e[vertex] = 1.0;
            prop_assert!(best <= objective(&e) + 1e-9 * objective(&e).abs().max(1.0));
        }
        prop_assert!(best <= objective(&vec![1.0 / k; j.k()]) + 1e-9);
    }

    #[test]
    fn scale_free_methods_ignore_a_global_scale((j, losses) in full_rank_problem(), log_s in -4.0f64..4.0) {
        let s = 10f64.powf(log_s);
        let rows: Vec<Vec<f64>> = j.rows().map(|r| r.iter().map(|x| x * s).collect()).collect();
        let scaled = Jacobian::from_rows(&rows).unwrap();
        let methods = [Method::Mgda, Method::Imtlg, Method::ConFig, Method::AlignedMtl];
        for config in methods.map(CombinerConfig::new) {
            let w = solve(&config, &j, &losses, 0).unwrap().unwrap().weights;
            let ws = solve(&config, &scaled, &losses, 0).unwrap().unwrap().weights;
            for (a, b) in w.iter().zip(&ws) {
                prop_assert!((a - b).abs() <= 1e-7, "{:?}: {:?} vs {:?}", config.method, w, ws);
            }
        }
    }

    #[test]
    fn moco_ignores_how_long_each_task_gradient_is(
        steps in (2usize..6, 2usize..6).prop_flat_map(|(k, extra)| {
            proptest::collection::vec((proptest::collection::vec(-1.0f64..1.0, k * (k + extra)), proptest::collection::vec(0.01f64..10.0, k)), 3)
                .prop_map(move |steps| steps.into_iter().map(|(data, losses)| (Jacobian::new(k, k + extra, data).unwrap(), losses)).collect::<Vec<_>>())
        }),
        log_scales in proptest::collection::vec(-2.0f64..2.0, 6),
    ) {
        let (k, p) = (steps[0].0.k(), steps[0].0.p());
        let scaled = |j: &Jacobian| {
            let rows: Vec<Vec<f64>> = j.rows().zip(&log_scales).map(|(r, e)| r.iter().map(|x| x * 10f64.powf(*e)).collect()).collect();
            Jacobian::from_rows(&rows).unwrap()
        };
        let run = |rows: &dyn Fn(&Jacobian) -> Jacobian| {
            let mut moco = CombinerConfig::new(Method::Moco).build(k).unwrap();
            let mut average = GradientAverage::zeros(k, p);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            steps.iter().map(|(j, losses)| {
                let j = rows(j);
                let (gram, tracked) = (j.gram(), average.tracked(&j));
                let input = TaskInput { gram: Some(&gram), losses: Some(losses), jacobian: None, tracked: Some(&tracked), ..Default::default() };
                let combination = combine(moco.as_mut(), k, &input, &mut rng).unwrap();
                average.apply(combination.tracking.as_ref().unwrap(), &j);
                (combination.weights.clone(), average.direction(&combination.weights))
            }).collect::<Vec<_>>()
        };
        use rand::SeedableRng;
        // Up to the 1e-8 that LibMTL adds to each norm: relative to the shortest gradient, scaled
        // or not, it can reach 1e-5 (rows of 1e-3).
        let shortest = steps.iter().flat_map(|(j, _)| [j.clone(), scaled(j)]).flat_map(|j| j.gram().norms()).filter(|n| *n > 0.0).fold(1.0, f64::min);
        let tolerance = 1e-6 + 1e-8 / shortest;
        for ((w, d), (ws, ds)) in run(&|j| j.clone()).iter().zip(run(&scaled)) {
            prop_assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12 && w.iter().all(|x| *x > 0.0), "weights on the simplex: {:?}", w);
            for (a, b) in w.iter().zip(&ws).chain(d.iter().zip(&ds)) {
                prop_assert!((a - b).abs() <= tolerance * (1.0 + a.abs()), "{:?} vs {:?}", (w, d), (ws, ds));
            }
        }
    }

    /// ExcessMTL over several steps: permuting the tasks permutes the weights, which stay positive
    /// and sum to K; scaling a task's gradients by a constant changes nothing (its risks are
    /// taken relative to its first, up to the 1e-7 under the square root: with squares of 0.01
    /// and more, a relative 5e-6 in each risk).
    #[test]
    fn excess_mtl_is_permutation_equivariant_and_ignores_each_tasks_scale(
        steps in (2usize..6, 1usize..6).prop_flat_map(|(k, p)| {
            proptest::collection::vec(proptest::collection::vec((0.1f64..1.0, any::<bool>()), k * p), 4)
                .prop_map(move |steps| steps.into_iter().map(|data| {
                    Jacobian::new(k, p, data.into_iter().map(|(x, negative)| if negative { -x } else { x }).collect()).unwrap()
                }).collect::<Vec<_>>())
        }),
        log_scales in proptest::collection::vec(0.0f64..2.0, 6),
        eta in 0.01f64..0.5,
    ) {
        let (k, p) = (steps[0].k(), steps[0].p());
        let run = |rows: &dyn Fn(&Jacobian) -> Jacobian| {
            let mut combiner = CombinerConfig { eta: Some(eta), ..CombinerConfig::new(Method::ExcessMtl) }.build(k).unwrap();
            let mut squares = SquaredGradientSum::zeros(k, p);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            steps.iter().map(|j| {
                let risks = squares.excess_risks(&rows(j));
                combine(combiner.as_mut(), k, &TaskInput { excess_risks: Some(&risks), ..Default::default() }, &mut rng).unwrap().weights
            }).collect::<Vec<_>>()
        };
        use rand::SeedableRng;
        let reversed: Vec<usize> = (0..k).rev().collect();
        let scaled = |j: &Jacobian| {
            let rows: Vec<Vec<f64>> = j.rows().zip(&log_scales).map(|(r, e)| r.iter().map(|x| x * 10f64.powf(*e)).collect()).collect();
            Jacobian::from_rows(&rows).unwrap()
        };
        let plain = run(&|j| j.clone());
        for ((w, wp), ws) in plain.iter().zip(run(&|j| permuted(j, &vec![1.0; k], &reversed).0)).zip(run(&scaled)) {
            prop_assert!((w.iter().sum::<f64>() - k as f64).abs() < 1e-9 && w.iter().all(|x| *x > 0.0), "{:?}", w);
            for i in 0..k {
                prop_assert!((w[i] - wp[k - 1 - i]).abs() <= 1e-12 * (1.0 + w[i]), "permuted: {:?} vs {:?}", w, wp);
                prop_assert!((w[i] - ws[i]).abs() <= 1e-4 * (1.0 + w[i]), "scaled: {:?} vs {:?}", w, ws);
            }
        }
    }

    /// TorchJD normalises the Gram by its trace, and zeroes one with a trace below 1e-4: above it,
    /// a global scale changes nothing.
    #[test]
    fn upgrad_and_dualproj_ignore_a_global_scale_above_their_epsilon((j, losses) in full_rank_problem(), log_s in 0.0f64..4.0) {
        let s = 10f64.powf(log_s);
        let rows: Vec<Vec<f64>> = j.rows().map(|r| r.iter().map(|x| x * s).collect()).collect();
        let scaled = Jacobian::from_rows(&rows).unwrap();
        for config in [Method::Upgrad, Method::DualProj].map(CombinerConfig::new) {
            let w = solve(&config, &j, &losses, 0).unwrap().unwrap().weights;
            let ws = solve(&config, &scaled, &losses, 0).unwrap().unwrap().weights;
            for (a, b) in w.iter().zip(&ws) {
                prop_assert!((a - b).abs() <= 1e-7 * (1.0 + a.abs()), "{:?}: {:?} vs {:?}", config.method, w, ws);
            }
        }
    }

    /// The projection's KKT conditions: `v >= u`, `G v >= 0`, and `(G v)_i = 0` where `v_i > u_i`.
    #[test]
    fn dual_cone_projection_satisfies_kkt((j, _) in problem(2.0), u in proptest::collection::vec(-1.0f64..1.0, 8)) {
        let k = j.k();
        let mut g = j.gram().matrix().clone();
        for i in 0..k {
            g[(i, i)] += 1e-4 * g.diagonal().max().max(1e-12);
        }
        let u = &u[..k];
        let v = project_weights(&g, u);
        let gv: Vec<f64> = (0..k).map(|i| (0..k).map(|l| g[(i, l)] * v[l]).sum()).collect();
        let scale = g.diagonal().max() * (1.0 + v.iter().map(|x| x.abs()).fold(0.0, f64::max));
        for i in 0..k {
            prop_assert!(v[i] >= u[i] - 1e-12, "v {:?} below u {:?}", v, u);
            prop_assert!(gv[i] >= -1e-9 * scale, "G v = {:?} has a negative entry", gv);
            if v[i] > u[i] + 1e-9 {
                prop_assert!(gv[i].abs() <= 1e-9 * scale, "G v = {:?} not zero where v {:?} > u {:?}", gv, v, u);
            }
        }
    }

    /// Gradients that agree pairwise are left alone: UPGrad and DualProj give the mean, GradVac's
    /// first step (cosine targets at zero) the sum.
    #[test]
    fn non_conflicting_gradients_are_left_alone(
        (k, rows) in (2usize..7).prop_flat_map(|k| (Just(k), proptest::collection::vec(0.0f64..1.0, k * 5))),
    ) {
        let j = Jacobian::new(k, 5, rows).unwrap();
        let losses = vec![1.0; k];
        for (method, expected) in [(Method::Upgrad, 1.0 / k as f64), (Method::DualProj, 1.0 / k as f64), (Method::GradVac, 1.0)] {
            let w = solve(&CombinerConfig::new(method), &j, &losses, 0).unwrap().unwrap().weights;
            prop_assert!(w.iter().all(|x| (x - expected).abs() <= 1e-9), "{}: {:?}", method, w);
        }
    }

    /// ConFIG's promise: the direction makes the same positive angle with every task gradient.
    #[test]
    fn config_makes_equal_angles_with_every_gradient((j, losses) in full_rank_problem()) {
        let w = solve(&CombinerConfig::new(Method::ConFig), &j, &losses, 0).unwrap().unwrap().weights;
        let m = j.gram();
        let cosines: Vec<f64> = gram_times(&j, &w).iter().zip(m.norms()).map(|(x, n)| x / n).collect();
        prop_assert!(cosines[0] > 0.0);
        prop_assert!(cosines.iter().all(|c| (c - cosines[0]).abs() <= 1e-7 * cosines[0]), "{:?}", cosines);
    }

    /// Aligned-MTL's balance transform: the aligned rows `B J` are orthogonal with equal norms, so
    /// `d = J^T B 1 / K` has `(B M B)` equal to `lambda_min I` on the full-rank problems.
    #[test]
    fn aligned_mtl_weights_equalise_the_gradients((j, losses) in full_rank_problem()) {
        let k = j.k();
        let w = solve(&CombinerConfig::new(Method::AlignedMtl), &j, &losses, 0).unwrap().unwrap().weights;
        // With B symmetric, M w = M B 1 / K = B^-1 (B M B) 1 / K = lambda_min B^-1 1 / K, so
        // w^T M w = lambda_min / K^2 1^T 1 = lambda_min / K.
        let lambda_min = j.gram().matrix().clone().symmetric_eigen().eigenvalues.min();
        let wmw: f64 = gram_times(&j, &w).iter().zip(&w).map(|(a, b)| a * b).sum();
        prop_assert!((wmw - lambda_min / k as f64).abs() <= 1e-8 * (1.0 + lambda_min), "{} vs {}", wmw, lambda_min / k as f64);
    }
}
