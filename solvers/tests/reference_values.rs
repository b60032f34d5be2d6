//! The self-check values of the spec (`shared/specs/solvers.md`), from the authors' code.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{combine, direction, CombinerConfig, Jacobian, Method, Solver, TaskInput};

fn jacobian() -> Jacobian {
    Jacobian::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap()
}

fn weights(config: CombinerConfig, losses: Option<&[f64]>) -> Vec<f64> {
    let j = jacobian();
    let gram = j.gram();
    let mut combiner = config.build(2).unwrap();
    let input = TaskInput { gram: Some(&gram), losses, jacobian: Some(&j) };
    combine(combiner.as_mut(), 2, &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().weights
}

fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= tolerance, "got {actual:?}, expected {expected:?}");
    }
}

fn with(method: Method, f: impl FnOnce(&mut CombinerConfig)) -> CombinerConfig {
    let mut config = CombinerConfig::new(method);
    f(&mut config);
    config
}

#[test]
fn gram_of_the_spec_jacobian() {
    let m = jacobian().gram();
    assert_eq!(m.matrix().as_slice(), &[18.0, -22.0, -22.0, 38.0]);
}

#[test]
fn nash_is_fairgrad_exact_at_alpha_one() {
    let w = weights(CombinerConfig::new(Method::Nash), None);
    assert_close(&w, &[0.591461, 0.407071], 1e-6);
    assert_close(&direction(&w, &jacobian()), &[0.0765843, 0.998533, 0.998533], 1e-6);
    let fairgrad = weights(with(Method::FairGrad, |c| (c.alpha, c.solver) = (Some(1.0), Some(Solver::Exact))), None);
    assert_close(&fairgrad, &w, 1e-12);
}

#[test]
fn fairgrad_exact_alpha_two() {
    let w = weights(with(Method::FairGrad, |c| c.solver = Some(Solver::Exact)), None);
    assert_close(&w, &[0.471363, 0.319454], 1e-6);
}

#[test]
fn fairgrad_sgd_alpha_two() {
    let w = weights(CombinerConfig::new(Method::FairGrad), None);
    assert_close(&w, &[0.55375, 0.369488], 1e-6);
}

#[test]
fn mgda() {
    let w = weights(CombinerConfig::new(Method::Mgda), None);
    assert_close(&w, &[0.6, 0.4], 1e-12);
    assert_close(&direction(&w, &jacobian()), &[0.0, 1.0, 1.0], 1e-12);
}

#[test]
fn imtlg() {
    assert_close(&weights(CombinerConfig::new(Method::Imtlg), None), &[0.59233, 0.40767], 1e-5);
}

#[test]
fn cagrad_mt10_variant() {
    let w = weights(with(Method::Cagrad, |c| c.c = Some(0.5)), None);
    assert_close(&w, &[0.563341, 0.4], 1e-6);
}

#[test]
fn banditmtl_steps() {
    let config = with(Method::BanditMtl, |c| (c.eta, c.rho) = (Some(0.5), Some(0.1)));
    let mut combiner = config.build(3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut step = |losses: &[f64]| {
        let input = TaskInput { losses: Some(losses), ..Default::default() };
        combine(combiner.as_mut(), 3, &input, &mut rng).unwrap().weights
    };
    assert_close(&step(&[1.0, 2.0, 3.0]), &[0.186324, 0.307196, 0.506480], 1e-6);
    assert_close(&step(&[0.5, 2.5, 1.0]), &[0.141649, 0.472085, 0.386266], 1e-6);
}

#[test]
fn famo_logits() {
    let config = with(Method::Famo, |c| (c.lr, c.gamma) = (Some(0.025), Some(1e-3)));
    let mut combiner = config.build(3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut step = |before: &[f64], after: &[f64]| {
        let input = TaskInput { losses: Some(before), ..Default::default() };
        combine(combiner.as_mut(), 3, &input, &mut rng).unwrap();
        combiner.after_step(after).unwrap();
        serde_json::from_value::<Vec<f64>>(combiner.state()["logits"].clone()).unwrap()
    };
    assert_close(&step(&[1.0, 2.0, 3.0], &[0.9, 1.5, 2.9]), &[0.025, -0.025, 0.025], 1e-7);
    assert_close(&step(&[0.9, 1.5, 2.9], &[0.85, 1.45, 2.5]), &[0.0491502, -0.0354669, 0.0291327], 1e-7);
}
