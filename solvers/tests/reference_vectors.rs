//! The methods ported from TorchJD and LibMTL against those libraries' own outputs. The vectors in
//! `tests/vectors/` were written by running TorchJD's aggregators and LibMTL's weightings (on
//! linear task losses `L_i = c_i + g_i . theta` at `theta = 0`, in float64) on the inputs they
//! hold; see `docs/methods.md` for how each was produced.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use solvers::methods::GradVac;
use solvers::{combine, direction, CombinerConfig, GradientAverage, Jacobian, Method, SquaredGradientSum, TaskInput};

fn cases(json: &str) -> Vec<Value> {
    let file: Value = serde_json::from_str(json).expect("a vector file");
    file["cases"].as_array().expect("cases").clone()
}

fn numbers(value: &Value) -> Vec<f64> {
    serde_json::from_value(value.clone()).expect("a list of numbers")
}

fn rows(value: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(value.clone()).expect("a list of rows")
}

#[track_caller]
fn assert_close(what: &str, actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= 1e-6, "{what}: got {actual:?}, expected {expected:?}");
    }
}

/// One solve of a stateless Gram method; checks the weights (where the reference exposes them)
/// and the direction.
fn check_gram_method(method: Method, json: &str) {
    for case in cases(json) {
        let name = format!("{method} on {}", case["name"]);
        let j = Jacobian::from_rows(&rows(&case["jacobian"])).unwrap();
        let gram = j.gram();
        let mut combiner = CombinerConfig::new(method).build(j.k()).unwrap();
        let input = TaskInput { gram: Some(&gram), ..Default::default() };
        let w = combine(combiner.as_mut(), j.k(), &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().weights;
        if !case["weights"].is_null() {
            assert_close(&name, &w, &numbers(&case["weights"]));
        }
        assert_close(&name, &direction(&w, &j), &numbers(&case["direction"]));
        if !case["libmtl_weights"].is_null() {
            let k = j.k() as f64;
            assert_close(&format!("{name} (LibMTL, K times)"), &w.iter().map(|x| x * k).collect::<Vec<_>>(), &numbers(&case["libmtl_weights"]));
        }
    }
}

#[test]
fn upgrad_matches_torchjd() {
    check_gram_method(Method::Upgrad, include_str!("vectors/upgrad.json"));
}

#[test]
fn dualproj_matches_torchjd() {
    check_gram_method(Method::DualProj, include_str!("vectors/dualproj.json"));
}

#[test]
fn config_matches_torchjd() {
    check_gram_method(Method::ConFig, include_str!("vectors/config.json"));
}

#[test]
fn aligned_mtl_matches_torchjd_and_libmtl() {
    check_gram_method(Method::AlignedMtl, include_str!("vectors/aligned_mtl.json"));
}

/// LibMTL shuffles with Python's `random`: the vectors record each task's order.
#[test]
fn gradvac_matches_libmtl_over_steps() {
    for case in cases(include_str!("vectors/gradvac.json")) {
        let steps = case["steps"].as_array().unwrap();
        let k = steps[0]["jacobian"].as_array().unwrap().len();
        let mut gradvac = GradVac::new(k, case["beta"].as_f64().unwrap());
        for (t, step) in steps.iter().enumerate() {
            let name = format!("gradvac {} step {t}", case["name"]);
            let j = Jacobian::from_rows(&rows(&step["jacobian"])).unwrap();
            let orders: Vec<Vec<usize>> = serde_json::from_value(step["orders"].clone()).unwrap();
            let w = gradvac.vaccinate(j.gram().matrix(), |i, others| *others = orders[i].clone());
            assert_close(&name, &direction(&w, &j), &numbers(&step["direction"]));
            let targets: Vec<Vec<f64>> = serde_json::from_value(solvers::Combiner::state(&gradvac)["targets"].clone()).unwrap();
            assert_close(&name, &targets.concat(), &rows(&step["rho"]).concat());
        }
    }
}

#[test]
fn db_mtl_matches_libmtl_over_steps() {
    for case in cases(include_str!("vectors/db_mtl.json")) {
        let steps = case["steps"].as_array().unwrap();
        let first = Jacobian::from_rows(&rows(&steps[0]["jacobian"])).unwrap();
        let config = CombinerConfig {
            beta: case["beta"].as_f64(),
            beta_sigma: case["beta_sigma"].as_f64(),
            ..CombinerConfig::new(Method::DbMtl)
        };
        let mut combiner = config.build(first.k()).unwrap();
        let mut average = GradientAverage::zeros(first.k(), first.p());
        for (t, step) in steps.iter().enumerate() {
            let name = format!("dbmtl {} step {t}", case["name"]);
            let j = Jacobian::from_rows(&rows(&step["jacobian"])).unwrap();
            let (gram, losses, tracked) = (j.gram(), numbers(&step["losses"]), average.tracked(&j));
            let input = TaskInput { gram: Some(&gram), losses: Some(&losses), tracked: Some(&tracked), ..Default::default() };
            let combination = combine(combiner.as_mut(), j.k(), &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
            average.apply(combination.tracking.as_ref().unwrap(), &j);
            assert_close(&name, &combination.weights, &numbers(&step["weights"]));
            assert_close(&name, &average.direction(&combination.weights), &numbers(&step["direction"]));
        }
    }
}

#[test]
fn excess_mtl_matches_libmtl_over_steps() {
    for case in cases(include_str!("vectors/excess_mtl.json")) {
        let steps = case["steps"].as_array().unwrap();
        let first = Jacobian::from_rows(&rows(&steps[0]["jacobian"])).unwrap();
        let config = CombinerConfig { eta: case["eta"].as_f64(), ..CombinerConfig::new(Method::ExcessMtl) };
        let mut combiner = config.build(first.k()).unwrap();
        let mut squares = SquaredGradientSum::zeros(first.k(), first.p());
        for (t, step) in steps.iter().enumerate() {
            let name = format!("excessmtl {} step {t}", case["name"]);
            let j = Jacobian::from_rows(&rows(&step["jacobian"])).unwrap();
            let risks = squares.excess_risks(&j);
            let input = TaskInput { excess_risks: Some(&risks), ..Default::default() };
            let w = combine(combiner.as_mut(), j.k(), &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().weights;
            assert_close(&name, &w, &numbers(&step["weights"]));
            assert_close(&name, &direction(&w, &j), &numbers(&step["direction"]));
        }
    }
}

/// LibMTL counts STCH's warm-up in epochs; the vectors ran one solve per epoch.
#[test]
fn stch_matches_libmtl_through_its_warmup() {
    for case in cases(include_str!("vectors/stch.json")) {
        let steps = case["steps"].as_array().unwrap();
        let k = numbers(&steps[0]["losses"]).len();
        let config = CombinerConfig {
            mu: case["mu"].as_f64(),
            warmup: case["warmup"].as_u64().map(|w| w as usize),
            average: Some(1),
            ..CombinerConfig::new(Method::Stch)
        };
        let mut combiner = config.build(k).unwrap();
        for (t, step) in steps.iter().enumerate() {
            let losses = numbers(&step["losses"]);
            let input = TaskInput { losses: Some(&losses), ..Default::default() };
            let w = combine(combiner.as_mut(), k, &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().weights;
            assert_close(&format!("stch {} step {t}", case["name"]), &w, &numbers(&step["weights"]));
        }
    }
}

/// Runs `config` over the steps of a case whose steps hold a Jacobian and losses, checking the
/// weights and the direction at each.
fn check_steps(what: &str, config: CombinerConfig, steps: &[Value]) {
    let k = steps[0]["jacobian"].as_array().unwrap().len();
    let mut combiner = config.build(k).unwrap();
    for (t, step) in steps.iter().enumerate() {
        let name = format!("{what} step {t}");
        let j = Jacobian::from_rows(&rows(&step["jacobian"])).unwrap();
        let (gram, losses) = (j.gram(), step["losses"].as_array().map(|_| numbers(&step["losses"])));
        let input = TaskInput { gram: Some(&gram), losses: losses.as_deref(), ..Default::default() };
        let w = combine(combiner.as_mut(), k, &input, &mut ChaCha8Rng::seed_from_u64(0)).unwrap().weights;
        assert_close(&name, &w, &numbers(&step["weights"]));
        assert_close(&name, &direction(&w, &j), &numbers(&step["direction"]));
    }
}

#[test]
fn gradnorm_matches_libmtl_with_adam_over_steps() {
    for case in cases(include_str!("vectors/gradnorm.json")) {
        let config = CombinerConfig {
            alpha: case["alpha"].as_f64(),
            lr: case["lr"].as_f64(),
            warmup: case["warmup"].as_u64().map(|w| w as usize),
            ..CombinerConfig::new(Method::GradNorm)
        };
        check_steps(&format!("gradnorm {}", case["name"]), config, case["steps"].as_array().unwrap());
    }
}

#[test]
fn sdmgrad_matches_libmtl_over_steps() {
    for case in cases(include_str!("vectors/sdmgrad.json")) {
        let config = CombinerConfig {
            lambda: case["lambda"].as_f64(),
            iters: case["iters"].as_u64().map(|i| i as usize),
            ..CombinerConfig::new(Method::SdmGrad)
        };
        check_steps(&format!("sdmgrad {}", case["name"]), config, case["steps"].as_array().unwrap());
    }
}
