//! Runs the papers' 2-task toy problem (figure 1 of the Nash-MTL and FairGrad papers) with
//! several combiners from the five starts and draws the trajectories in loss space, over the
//! Pareto front, as a PNG.
//!
//!     cargo run --release -p solvers --example toy -- [OUT.png] [STEPS]
//!
//! The committed `solvers/toy.png` was made this way.
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use solvers::toy::{gradient_cosine, losses_and_gradients, trajectory, STARTS};
use solvers::{CombinerConfig, Method, Solver};

const FRONT_COSINE: f64 = -0.99;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "toy.png".to_string());
    let steps: usize = args.next().map_or(Ok(35_000), |s| s.parse())?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded font did not load")?;

    let exact = |method| CombinerConfig { solver: Some(Solver::Exact), ..CombinerConfig::new(method) };
    let panels = [
        ("LS (MT-SAC)", CombinerConfig::new(Method::Ls)),
        ("MGDA", CombinerConfig::new(Method::Mgda)),
        ("PCGrad", CombinerConfig::new(Method::Pcgrad)),
        ("CAGrad (c = 0.5)", CombinerConfig { c: Some(0.5), ..CombinerConfig::new(Method::Cagrad) }),
        ("IMTL-G", CombinerConfig::new(Method::Imtlg)),
        ("Nash-MTL", CombinerConfig::new(Method::Nash)),
        ("FairGrad exact (alpha = 2)", exact(Method::FairGrad)),
        ("FairGrad SGD (alpha = 2, RL variant)", CombinerConfig::new(Method::FairGrad)),
    ];

    let front = pareto_front();
    let root = BitMapBackend::new(&out, (1600, 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.titled(&format!("2-task toy problem: trajectories in loss space, {steps} Adam steps from 5 starts"), ("sans-serif", 24))?;
    let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189)];
    for ((name, config), area) in panels.iter().zip(body.split_evenly((2, 4))) {
        let mut paths = Vec::new();
        for &start in &STARTS {
            let mut combiner = config.build(2)?;
            paths.push(trajectory(combiner.as_mut(), start, steps, &mut ChaCha8Rng::seed_from_u64(0))?);
        }
        let reached = paths.iter().filter(|p| gradient_cosine(*p.last().expect("non-empty")) < FRONT_COSINE).count();
        println!("{name:<38} reached the front from {reached}/5 starts");
        let mut chart = ChartBuilder::on(&area)
            .caption(format!("{name}: {reached}/5 on the front"), ("sans-serif", 17))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(-2.2f64..1.2, -22.0f64..12.0)?;
        chart.configure_mesh().x_desc("L1").y_desc("L2").light_line_style(WHITE).label_style(("sans-serif", 12)).draw()?;
        chart.draw_series(front.iter().map(|&(l1, l2)| Circle::new((l1, l2), 1, BLACK.mix(0.35).filled())))?;
        for (path, color) in paths.iter().zip(colors) {
            let points = path.iter().step_by(50).map(|&x| {
                let ([l1, l2], _) = losses_and_gradients(x);
                (l1, l2)
            });
            chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
            let ([s1, s2], _) = losses_and_gradients(path[0]);
            let ([e1, e2], _) = losses_and_gradients(*path.last().expect("non-empty"));
            chart.draw_series([Circle::new((s1, s2), 4, color.filled())])?;
            chart.draw_series([Cross::new((e1, e2), 6, BLACK.stroke_width(2))])?;
        }
    }
    root.present()?;
    println!("wrote {out}");
    Ok(())
}

/// Loss pairs of points where the two gradients are (nearly) opposite: the Pareto front.
fn pareto_front() -> Vec<(f64, f64)> {
    let n = 600;
    let mut front = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let x = [-10.0 + 20.0 * i as f64 / n as f64, -10.0 + 20.0 * j as f64 / n as f64];
            if gradient_cosine(x) < -0.9999 {
                let ([l1, l2], _) = losses_and_gradients(x);
                front.push((l1, l2));
            }
        }
    }
    front
}
