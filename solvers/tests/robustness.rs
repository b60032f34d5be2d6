//! Degenerate inputs never give NaN/Inf weights or a panic; invalid ones give typed errors.
mod common;

use common::{all_configs, solve};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{combine, CombinerConfig, Fallback, Gram, Jacobian, Method, Solver, SolverError, TaskInput};

fn assert_finite_for_every_method(rows: &[Vec<f64>]) {
    let j = Jacobian::from_rows(rows).unwrap();
    let losses = vec![1.0; j.k()];
    for config in all_configs() {
        let Some(result) = solve(&config, &j, &losses, 0) else { continue };
        let combination = result.unwrap_or_else(|e| panic!("{config:?}: {e}"));
        assert!(combination.weights.iter().all(|w| w.is_finite()), "{config:?}: {combination:?}");
    }
}

#[test]
fn zero_gradients() {
    assert_finite_for_every_method(&[vec![0.0; 4], vec![0.0; 4], vec![0.0; 4]]);
}

#[test]
fn rank_deficient_gradients() {
    assert_finite_for_every_method(&[vec![1.0, 2.0], vec![2.0, 4.0], vec![-1.0, 0.5], vec![1.0, 2.0]]);
}

#[test]
fn pareto_stationary_gradients() {
    assert_finite_for_every_method(&[vec![1.0, -2.0, 0.5], vec![-1.0, 2.0, -0.5]]);
    assert_finite_for_every_method(&[vec![1.0, 0.0], vec![-0.5, 0.5], vec![-0.5, -0.5]]);
}

#[test]
fn extreme_scales_in_one_gram() {
    assert_finite_for_every_method(&[vec![1e-6, 2e-6, 0.0], vec![-1e6, 3e5, 1e6], vec![0.5, -0.5, 1.0]]);
}

#[test]
fn fairgrad_exact_reports_divergence_at_a_pareto_stationary_point() {
    let j = Jacobian::from_rows(&[vec![1.0, -2.0], vec![-1.0, 2.0]]).unwrap();
    let config = CombinerConfig { solver: Some(Solver::Exact), ..CombinerConfig::new(Method::FairGrad) };
    let combination = solve(&config, &j, &[1.0, 1.0], 0).unwrap().unwrap();
    assert_eq!(combination.fallback, Some(Fallback::Diverged));
    assert!(combination.weights.iter().all(|w| w.is_finite() && *w > 0.0));
}

/// A shared scalar (the SAC temperature) has a rank-1 Gram; once its task gradients have mixed
/// signs they are Pareto-stationary and `M w = 1/w` has no root.
#[test]
fn rank_one_mixed_sign_gram_falls_back_to_bounded_weights() {
    let gram = Gram::from_rows(&[vec![1.0, -2.0], vec![-2.0, 4.0]]).unwrap();
    let input = TaskInput { gram: Some(&gram), ..Default::default() };
    let nash_ccp = CombinerConfig { solver: Some(Solver::Ccp), ..CombinerConfig::new(Method::Nash) };
    let fairgrad_exact = CombinerConfig { solver: Some(Solver::Exact), ..CombinerConfig::new(Method::FairGrad) };
    for config in [CombinerConfig::new(Method::Nash), nash_ccp, fairgrad_exact] {
        let mut combiner = config.build(2).unwrap();
        let combination = combine(combiner.as_mut(), 2, &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(combination.fallback, Some(Fallback::Diverged), "{config:?}");
        let applied = combination.or_last_good(&[0.3, 0.7]);
        assert_eq!(applied.weights, vec![0.3, 0.7], "{config:?}: a fallback applies the last good weights");
        assert_eq!(applied.fallback, Some(Fallback::Diverged), "{config:?}: and still reports the fallback");
    }
}

#[test]
fn nash_ccp_keeps_its_previous_weights_through_an_infeasible_step() {
    let mut nash = CombinerConfig { solver: Some(Solver::Ccp), ..CombinerConfig::new(Method::Nash) }.build(2).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut solve = |rows: &[Vec<f64>]| {
        let gram = Gram::from_rows(rows).unwrap();
        combine(nash.as_mut(), 2, &TaskInput { gram: Some(&gram), ..Default::default() }, &mut rng).unwrap()
    };
    let good = solve(&[vec![18.0, -22.0], vec![-22.0, 38.0]]);
    assert_eq!(good.fallback, None);
    let stationary = solve(&[vec![1.0, -2.0], vec![-2.0, 4.0]]);
    assert_eq!((stationary.weights, stationary.fallback), (good.weights, Some(Fallback::Diverged)));
}

#[test]
fn zero_gram_is_reported_as_degenerate() {
    let gram = Gram::new(2, vec![0.0; 4]).unwrap();
    let mut nash = CombinerConfig::new(Method::Nash).build(2).unwrap();
    let input = TaskInput { gram: Some(&gram), ..Default::default() };
    let combination = combine(nash.as_mut(), 2, &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert_eq!(combination.fallback, Some(Fallback::Degenerate));
}

#[test]
fn invalid_grams_are_typed_errors() {
    assert_eq!(Gram::new(0, vec![]), Err(SolverError::NoTasks));
    assert!(matches!(Gram::new(2, vec![1.0; 3]), Err(SolverError::WrongLength { k: 2, len: 3 })));
    assert!(matches!(Gram::from_rows(&[vec![1.0, 0.0], vec![0.0]]), Err(SolverError::NotSquare { row: 1, .. })));
    assert!(matches!(Gram::new(2, vec![1.0, 0.5, -0.5, 1.0]), Err(SolverError::NotSymmetric { i: 1, j: 0, .. })));
    assert!(matches!(Gram::new(2, vec![1.0, f64::NAN, f64::NAN, 1.0]), Err(SolverError::NonFinite { index: 1, .. })));
    assert!(matches!(Gram::new(1, vec![f64::INFINITY]), Err(SolverError::NonFinite { .. })));
    assert!(matches!(Gram::new(2, vec![-1.0, 0.0, 0.0, 1.0]), Err(SolverError::NegativeDiagonal { i: 0, .. })));
    assert!(matches!(Jacobian::from_rows(&[vec![1.0, 2.0], vec![1.0]]), Err(SolverError::RaggedJacobian { row: 1, .. })));
}

#[test]
fn rounding_asymmetry_is_accepted_and_symmetrised() {
    let gram = Gram::new(2, vec![1.0, 0.5, 0.5 + 1e-9, 1.0]).unwrap();
    assert_eq!(gram.matrix()[(0, 1)], gram.matrix()[(1, 0)]);
}

fn build_error(config: CombinerConfig, k: usize) -> SolverError {
    config.build(k).err().expect("must be rejected")
}

#[test]
fn invalid_hyper_parameters_are_typed_errors() {
    let fairgrad = |alpha| CombinerConfig { alpha: Some(alpha), ..CombinerConfig::new(Method::FairGrad) };
    assert!(matches!(build_error(fairgrad(0.0), 3), SolverError::InvalidParameter { name: "alpha", .. }));
    assert!(matches!(build_error(fairgrad(-1.0), 3), SolverError::InvalidParameter { name: "alpha", .. }));
    assert!(matches!(build_error(fairgrad(f64::NAN), 3), SolverError::InvalidParameter { name: "alpha", .. }));
    let cagrad = CombinerConfig { c: Some(-0.1), ..CombinerConfig::new(Method::Cagrad) };
    assert!(matches!(build_error(cagrad, 3), SolverError::InvalidParameter { name: "c", .. }));
    let emtl = CombinerConfig { rho: Some(1.2), ..CombinerConfig::new(Method::Emtl) };
    let error = build_error(emtl, 3);
    assert!(matches!(error, SolverError::InvalidParameter { name: "rho", .. }));
    assert!(error.to_string().contains("log K"), "{error}");
    assert_eq!(build_error(CombinerConfig::new(Method::Ls), 0), SolverError::NoTasks);
    let iters = CombinerConfig { iters: Some(0), ..CombinerConfig::new(Method::FairGrad) };
    assert!(matches!(build_error(iters, 3), SolverError::InvalidParameter { name: "iters", .. }));
}

#[test]
fn options_a_method_does_not_use_are_rejected() {
    let error = build_error(CombinerConfig { alpha: Some(2.0), ..CombinerConfig::new(Method::Mgda) }, 3);
    assert_eq!(error, SolverError::UnusedOption { method: Method::Mgda, option: "alpha" });
    assert_eq!(error.to_string(), "mgda does not take alpha");
    let error = build_error(CombinerConfig { solver: Some(Solver::Sgd), ..CombinerConfig::new(Method::Nash) }, 3);
    assert!(error.to_string().contains("unknown solver 'sgd'"), "{error}");
}

#[test]
fn missing_and_bad_inputs_are_typed_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut famo = CombinerConfig::new(Method::Famo).build(2).unwrap();
    let error = combine(famo.as_mut(), 2, &TaskInput::default(), &mut rng).unwrap_err();
    assert_eq!(error.to_string(), "famo needs task losses");
    let negative = TaskInput { losses: Some(&[1.0, -0.5]), ..Default::default() };
    let error = combine(famo.as_mut(), 2, &negative, &mut rng).unwrap_err();
    assert!(matches!(error, SolverError::NonPositiveLoss { task: 1, .. }), "{error}");
    let nan = TaskInput { losses: Some(&[1.0, f64::NAN]), ..Default::default() };
    assert!(matches!(combine(famo.as_mut(), 2, &nan, &mut rng), Err(SolverError::NonFinite { index: 1, .. })));
    let short = TaskInput { losses: Some(&[1.0]), ..Default::default() };
    assert!(matches!(combine(famo.as_mut(), 2, &short, &mut rng), Err(SolverError::TaskCount { .. })));
    let mut nash = CombinerConfig::new(Method::Nash).build(2).unwrap();
    assert_eq!(combine(nash.as_mut(), 2, &TaskInput::default(), &mut rng).unwrap_err().to_string(), "nash needs the Gram matrix");
    let mut graddrop = CombinerConfig::new(Method::GradDrop).build(2).unwrap();
    let error = combine(graddrop.as_mut(), 2, &TaskInput::default(), &mut rng).unwrap_err();
    assert_eq!(error.to_string(), "graddrop needs the Jacobian");
}

#[test]
fn method_names_round_trip_and_unknown_names_list_the_choices() {
    for &method in Method::ALL {
        assert_eq!(method.as_str().parse::<Method>().unwrap(), method);
    }
    let error = "nashmtl".parse::<Method>().unwrap_err().to_string();
    assert!(error.starts_with("unknown method 'nashmtl' (expected one of: ls, fairgrad, nash"), "{error}");
}

#[test]
fn stateful_methods_resume_from_their_state() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let losses = [[1.0, 2.0, 3.0], [0.8, 2.5, 1.0], [0.6, 2.0, 1.5]];
    for method in [Method::Famo, Method::Uw, Method::Dwa, Method::BanditMtl] {
        let config = CombinerConfig { rho: (method == Method::BanditMtl).then_some(0.5), ..CombinerConfig::new(method) };
        let mut original = config.build(3).unwrap();
        let step = |c: &mut dyn solvers::Combiner, l: &[f64], rng: &mut ChaCha8Rng| {
            let w = combine(c, 3, &TaskInput { losses: Some(l), ..Default::default() }, rng).unwrap().weights;
            c.after_step(&l.iter().map(|x| x * 0.9).collect::<Vec<_>>()).unwrap();
            w
        };
        step(original.as_mut(), &losses[0], &mut rng);
        step(original.as_mut(), &losses[1], &mut rng);
        let mut restored = config.build(3).unwrap();
        restored.load_state(&original.state()).unwrap();
        assert_eq!(step(original.as_mut(), &losses[2], &mut rng), step(restored.as_mut(), &losses[2], &mut rng), "{method}");
    }
}

#[test]
fn stateful_gram_methods_resume_from_their_state() {
    let jacobians = [[[1.0, 0.5, -0.2], [-0.8, 0.4, 0.1], [0.2, -1.0, 0.9]], [[0.9, 0.6, -0.1], [-1.0, 0.2, 0.3], [0.1, -0.7, 1.1]]];
    let losses = [[1.0, 2.0, 3.0], [0.8, 2.5, 1.0], [0.6, 2.0, 1.5]];
    let configs = [
        CombinerConfig::new(Method::GradVac),
        CombinerConfig::new(Method::SdmGrad),
        CombinerConfig::new(Method::DbMtl),
        CombinerConfig::new(Method::ExcessMtl),
        CombinerConfig { warmup: Some(1), ..CombinerConfig::new(Method::GradNorm) },
        CombinerConfig { warmup: Some(1), average: Some(1), ..CombinerConfig::new(Method::Stch) },
    ];
    for config in configs {
        let step = |c: &mut dyn solvers::Combiner, t: usize, rng: &mut ChaCha8Rng| {
            let rows: Vec<Vec<f64>> = jacobians[t % 2].iter().map(|r| r.to_vec()).collect();
            let j = solvers::Jacobian::from_rows(&rows).unwrap();
            let (gram, tracked, risks) = (j.gram(), solvers::Tracked::zero(3), solvers::SquaredGradientSum::zeros(3, 3).excess_risks(&j));
            let input = TaskInput { gram: Some(&gram), losses: Some(&losses[t]), tracked: Some(&tracked), excess_risks: Some(&risks), ..Default::default() };
            combine(c, 3, &input, rng).unwrap().weights
        };
        let mut original = config.build(3).unwrap();
        step(original.as_mut(), 0, &mut ChaCha8Rng::seed_from_u64(1));
        step(original.as_mut(), 1, &mut ChaCha8Rng::seed_from_u64(2));
        let mut restored = config.build(3).unwrap();
        restored.load_state(&original.state()).unwrap();
        let next = |c: &mut dyn solvers::Combiner| step(c, 2, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(next(original.as_mut()), next(restored.as_mut()), "{}", config.method);
    }
}
