use nalgebra::{DMatrix, DVector};

/// The weights `v` of the projection of `J^T u` onto the dual cone of the rows of `J`, from the
/// Gram `G = J J^T` alone: by Proposition 1 of the UPGrad paper (TorchJD's `project_weights`),
/// `v = argmin v^T G v` subject to `v >= u`. TorchJD hands this QP to quadprog; here it is an
/// active-set method in the slack `z = v - u >= 0` (Lawson and Hanson's NNLS loop, with `G`
/// in place of `A^T A`), exact in finitely many steps for a positive definite `G`.
pub fn project_weights(g: &DMatrix<f64>, u: &[f64]) -> Vec<f64> {
    let k = u.len();
    let tolerance = 1e-14 * (1.0 + g.diagonal().amax());
    let mut v = u.to_vec();
    // free[i]: the bound v_i >= u_i is inactive, so (G v)_i = 0 there.
    let mut free = vec![false; k];
    for _ in 0..3 * k + 10 {
        let gradient: Vec<f64> = (0..k).map(|i| (0..k).map(|j| g[(i, j)] * v[j]).sum()).collect();
        let entering = (0..k).filter(|&i| !free[i] && gradient[i] < -tolerance).min_by(|&a, &b| gradient[a].total_cmp(&gradient[b]));
        let Some(entering) = entering else { break };
        free[entering] = true;
        loop {
            let s = stationary_on(g, u, &free);
            let blocking: Vec<usize> = (0..k).filter(|&i| free[i] && s[i] <= u[i]).collect();
            if blocking.is_empty() {
                v = s;
                break;
            }
            let step = blocking.iter().map(|&i| (v[i] - u[i]) / (v[i] - s[i])).fold(1.0, f64::min).max(0.0);
            for i in 0..k {
                v[i] += step * (s[i] - v[i]);
                if free[i] && v[i] - u[i] <= tolerance * (1.0 + u[i].abs()) {
                    (free[i], v[i]) = (false, u[i]);
                }
            }
            if !free.iter().any(|&f| f) {
                break;
            }
        }
    }
    v
}

/// The minimiser of `v^T G v` with `v_i = u_i` off the free set.
fn stationary_on(g: &DMatrix<f64>, u: &[f64], free: &[bool]) -> Vec<f64> {
    let f: Vec<usize> = (0..u.len()).filter(|&i| free[i]).collect();
    let b: Vec<usize> = (0..u.len()).filter(|&i| !free[i]).collect();
    let g_ff = DMatrix::from_fn(f.len(), f.len(), |r, c| g[(f[r], f[c])]);
    let rhs = DVector::from_fn(f.len(), |r, _| -b.iter().map(|&j| g[(f[r], j)] * u[j]).sum::<f64>());
    let solution = crate::linalg::solve_spd(&g_ff, &rhs);
    let mut v = u.to_vec();
    f.iter().zip(solution.iter()).for_each(|(&i, x)| v[i] = *x);
    v
}

/// TorchJD's `regularize(normalize(G, eps), eps)`: the Gram divided by its trace (zero when the
/// trace is below `eps`), plus `eps I`, so the QP is positive definite.
pub fn normalized_regularized(g: &DMatrix<f64>, eps: f64) -> DMatrix<f64> {
    let trace = g.trace();
    let mut out = if trace < eps { DMatrix::zeros(g.nrows(), g.ncols()) } else { g / trace };
    for i in 0..g.nrows() {
        out[(i, i)] += eps;
    }
    out
}
