//! The self-check values of the spec (`shared/specs/solvers.md`), from the authors' code.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::{combine, direction, CombinerConfig, GradientAverage, Jacobian, Method, Solver, TaskInput};

fn jacobian() -> Jacobian {
    Jacobian::from_rows(&[vec![-4.0, 1.0, 1.0], vec![6.0, 1.0, 1.0]]).unwrap()
}

fn weights(config: CombinerConfig, losses: Option<&[f64]>) -> Vec<f64> {
    let j = jacobian();
    let gram = j.gram();
    let mut combiner = config.build(2).unwrap();
    let input = TaskInput { gram: Some(&gram), losses, jacobian: Some(&j), ..Default::default() };
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

/// MoCo's weights and direction over several steps, from LibMTL's `MoCo.py` (commit 4336804) run
/// once in float64 torch with these Jacobians and losses fed to its `backward` (its gradient pass
/// replaced by the fixed rows, its `_reset_grad` recording the direction).
#[test]
fn moco_steps_match_libmtl() {
    let run = |config: CombinerConfig, steps: &[(Vec<Vec<f64>>, Vec<f64>)], expected: &[([f64; 3], [f64; 4])]| {
        let k = steps[0].1.len();
        let mut moco = config.build(k).unwrap();
        let mut average = GradientAverage::zeros(k, steps[0].0[0].len());
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for ((rows, losses), (lambda, d)) in steps.iter().zip(expected) {
            let j = Jacobian::from_rows(rows).unwrap();
            let (gram, tracked) = (j.gram(), average.tracked(&j));
            let input = TaskInput { gram: Some(&gram), losses: Some(losses), jacobian: None, tracked: Some(&tracked), ..Default::default() };
            let combination = combine(moco.as_mut(), k, &input, &mut rng).unwrap();
            let update = combination.tracking.expect("moco tracks its gradients");
            average.apply(&update, &j);
            assert_close(&combination.weights, lambda, 1e-12);
            let direction = average.direction(&combination.weights);
            assert_close(&direction, d, 1e-12);
            let squared: f64 = direction.iter().map(|x| x * x).sum();
            let quadratic: f64 = (0..k).map(|a| (0..k).map(|b| lambda[a] * update.gram.matrix()[(a, b)] * lambda[b]).sum::<f64>()).sum();
            assert!((squared - quadratic).abs() <= 1e-12, "|d|^2 from the tracked Gram");
        }
    };
    let rows = [
        vec![vec![1.0, -2.0, 0.5, 3.0], vec![-1.5, 0.5, 2.0, 0.0], vec![0.2, 0.1, -0.3, 0.4]],
        vec![vec![0.8, -1.0, 0.7, 2.0], vec![-2.0, 1.5, 1.0, 0.5], vec![0.3, -0.2, -0.1, 0.6]],
        vec![vec![1.2, -0.5, 0.1, 2.5], vec![-1.0, 0.0, 2.5, -0.5], vec![0.0, 0.4, -0.6, 0.2]],
        vec![vec![0.5, -1.5, 0.9, 1.0], vec![-1.2, 1.0, 1.5, 0.3], vec![0.6, 0.1, -0.2, 0.1]],
    ];
    let losses = [vec![2.0, 0.5, 4.0], vec![1.5, 0.6, 3.0], vec![1.2, 0.4, 2.5], vec![1.0, 0.45, 2.0]];
    let steps: Vec<_> = rows.into_iter().zip(losses).collect();
    run(
        CombinerConfig::new(Method::Moco),
        &steps,
        &[
            ([0.3343328244371226, 0.36046234356234896, 0.3052048320005285], [0.2584376583030851, -0.04801569138172794, -0.21935919050112826, 0.711480967278266]),
            ([0.33199702044190355, 0.3681123310151998, 0.2998906485428968], [0.29824357265281976, -0.1495611255913477, -0.1039614283253735, 0.8801017314271502]),
            ([0.33098618502020727, 0.3620084344651558, 0.30700538051463705], [0.25118778485598775, -0.00885443140612377, -0.21476882100411715, 0.78777065859304]),
            ([0.3312274147728845, 0.35488200973487577, 0.3138905754922398], [0.33635783567171956, -0.022880598921252174, -0.15366914110008928, 0.6683224815362342]),
        ],
    );
    let other = with(Method::Moco, |c| {
        (c.beta, c.beta_sigma, c.gamma, c.gamma_sigma, c.rho) = (Some(0.3), Some(0.2), Some(0.5), Some(0.1), Some(0.2));
    });
    run(
        other,
        &steps,
        &[
            ([0.3340314873456224, 0.38248375981026095, 0.28348475284411656], [0.14355399786201622, -0.032824441035397334, -0.11477231662249938, 0.40771036996513077]),
            ([0.32278405385902137, 0.43079017645052586, 0.24642576969045268], [0.16306857556485732, -0.09526740362176903, -0.030166960228485168, 0.5515712514624442]),
            ([0.3151553836815296, 0.4324049965392992, 0.2524396197791713], [0.14871220144676098, -0.005101525533829768, -0.10703314138127559, 0.5346613798838841]),
            ([0.314424538115982, 0.42299135339888794, 0.26258410848513], [0.22388713832074797, -0.01560392961745792, -0.06771088942336945, 0.48050689793116474]),
        ],
    );
}
