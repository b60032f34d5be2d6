/// One mirror-ascent step with the negative entropy, kept inside a KL ball around uniform:
/// `q_i ~ p_i exp(eta s_i)`; if `KL(q || uniform) > rho`, the projection is
/// `p(lambda)_i ~ q_i^(1/(1+lambda))` with `lambda > 0` found by bisection so that the KL is
/// `rho` (BanditMTL's step; EMTL reuses it on relative contributions).
pub fn mirror_ascent(p: &[f64], scores: &[f64], eta: f64, rho: f64) -> Vec<f64> {
    // Work with log q, so that large scores cannot overflow.
    let log_q: Vec<f64> = p.iter().zip(scores).map(|(pi, s)| pi.max(f64::MIN_POSITIVE).ln() + eta * s).collect();
    let tempered = |lambda: f64| -> Vec<f64> {
        let logits: Vec<f64> = log_q.iter().map(|l| l / (1.0 + lambda)).collect();
        crate::linalg::softmax(&logits)
    };
    let q = tempered(0.0);
    if kl_to_uniform(&q) <= rho {
        return q;
    }
    let mut high = 1.0;
    while kl_to_uniform(&tempered(high)) > rho && high < 1e300 {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if kl_to_uniform(&tempered(mid)) > rho {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-15 * high {
            break;
        }
    }
    tempered(high)
}

/// `KL(p || uniform) = sum p_i log(K p_i)`.
pub fn kl_to_uniform(p: &[f64]) -> f64 {
    let k = p.len() as f64;
    p.iter().filter(|x| **x > 0.0).map(|x| x * (k * x).ln()).sum()
}
