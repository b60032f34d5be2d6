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

/// One CCP step of the official Nash-MTL code (cvxpy/ECOS, from all ones, the first update),
/// computed with that code; the 4- and 6-task Grams come from random Jacobians with rows
/// scaled over two orders of magnitude.
#[test]
fn nash_ccp_one_step_matches_the_official_convex_program() {
    let one_step = |rows: &[Vec<f64>]| {
        let gram = solvers::Gram::from_rows(rows).unwrap();
        let mut nash = with(Method::Nash, |c| c.solver = Some(Solver::Ccp)).build(gram.k()).unwrap();
        let input = TaskInput { gram: Some(&gram), ..Default::default() };
        let combination = combine(nash.as_mut(), gram.k(), &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(combination.fallback, None);
        combination.weights
    };
    let relative = |actual: Vec<f64>, expected: &[f64]| {
        let scaled: Vec<f64> = actual.iter().zip(expected).map(|(a, e)| a / e).collect();
        assert_close(&scaled, &vec![1.0; expected.len()], 2e-6);
    };
    relative(one_step(&[vec![18.0, -22.0], vec![-22.0, 38.0]]), &[0.59146119, 0.4070715]);
    let m4 = [
        vec![2.572513767958138, -5.435710866788379, -0.13583630474055927, -0.9415647484274889],
        vec![-5.435710866788379, 79.5358252770008, -1.9417857361075224, 8.06569140901553],
        vec![-0.13583630474055927, -1.9417857361075224, 0.3381811362098967, -0.6931222921533579],
        vec![-0.9415647484274889, 8.06569140901553, -0.6931222921533579, 4.660731183651087],
    ];
    relative(one_step(&m4), &[1.17690526, 0.1685848, 3.82757906, 0.78763964]);
    let m6 = [
        vec![2.353708425268597, 13.316857419569894, 0.417332136778467, 0.27549703260201935, -5.205891238700548, 2.1990504937141524],
        vec![13.316857419569894, 960.6199754040118, 16.274550471619555, 23.33176507896086, -16.73223568897218, 32.83657164210386],
        vec![0.417332136778467, 16.274550471619555, 1.2590886472019753, 1.0743969736195502, 4.168890975123308, 1.257392115560743],
        vec![0.27549703260201935, 23.33176507896086, 1.0743969736195502, 7.893062416510476, 3.9511286894587125, -0.10032955750332775],
        vec![-5.205891238700548, -16.73223568897218, 4.168890975123308, 3.9511286894587125, 49.22443763481183, -0.596379886492895],
        vec![2.1990504937141524, 32.83657164210386, 1.257392115560743, -0.10032955750332775, -0.596379886492895, 4.140557017024322],
    ];
    relative(
        one_step(&m6),
        &[0.5784252812098793, 0.020982223939774725, 0.4204279228997523, 0.265747135852281, 0.1501170104848545, 0.2823018387194508],
    );
}

#[test]
fn famo_mt10_form_multiplies_by_c() {
    let losses = [1.0, 4.0];
    let c: f64 = losses.iter().map(|l| 0.5 / (l + 1e-8)).sum();
    let supervised = weights(CombinerConfig::new(Method::Famo), Some(&losses));
    let mt10 = weights(with(Method::Famo, |config| config.solver = Some(Solver::Mt10)), Some(&losses));
    let expected = |scale: f64| -> Vec<f64> { losses.iter().map(|l| scale * 0.5 / (l + 1e-8)).collect() };
    assert_close(&supervised, &expected(1.0 / c), 1e-12);
    assert_close(&mt10, &expected(c), 1e-12);
}
