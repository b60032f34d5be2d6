//! `mt10 report` on synthetic run directories, written the way `mt10 train` writes them (its
//! resolved config, `seed-<s>/metrics.csv` and `weights.csv`), so that every number in the
//! tables is known in advance and no training is needed.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mt10(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mt10")).args(args).output().expect("mt10 runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mt10-report-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Per seed, its evaluations: (step, success per task).
type Seeds = Vec<(u64, Vec<(u64, Vec<f64>)>)>;

/// A run directory of `method` under `preset` (`--set` options after it) with these seeds.
fn write_run(dir: &Path, preset: &str, method: &str, sets: &[&str], seeds: &Seeds) {
    let seed_list = seeds.iter().map(|(s, _)| s.to_string()).collect::<Vec<_>>().join(",");
    let mut args = vec!["train", "--preset", preset, "--method", method, "--seed-list", &seed_list, "--print-config"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let config = mt10(&args);
    assert!(config.status.success(), "{}", String::from_utf8_lossy(&config.stderr));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.toml"), &config.stdout).unwrap();
    let tasks: Vec<String> = match preset {
        "toy" => (0..4).map(|i| if i == 0 { "reach-0-loud".to_string() } else { format!("reach-{i}") }).collect(),
        _ => ["reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close", "button-press-topdown", "peg-insert-side", "window-open", "window-close"]
            .map(String::from)
            .into(),
    };
    for (seed, evaluations) in seeds {
        let seed_dir = dir.join(format!("seed-{seed}"));
        std::fs::create_dir_all(&seed_dir).unwrap();
        let mut metrics = format!(
            "step,wall_time_s,mean_success{}{}\n",
            tasks.iter().map(|t| format!(",success:{t}")).collect::<String>(),
            tasks.iter().map(|t| format!(",return:{t}")).collect::<String>()
        );
        for (step, success) in evaluations {
            assert_eq!(success.len(), tasks.len());
            let mean = success.iter().sum::<f64>() / success.len() as f64;
            let values: String = success.iter().map(|s| format!(",{s}")).chain(success.iter().map(|_| ",-1.5".to_string())).collect();
            metrics.push_str(&format!("{step},{:.3},{mean}{values}\n", *step as f64 / 100.0));
        }
        std::fs::write(seed_dir.join("metrics.csv"), metrics).unwrap();
        let uniform = vec![format!("{}", 1.0 / tasks.len() as f64); tasks.len()].join(",");
        let weights: String = ["critic", "actor", "alpha"].iter().map(|c| format!("100,{c},{uniform}\n")).collect();
        std::fs::write(seed_dir.join("weights.csv"), format!("step,component,{}\n{weights}", tasks.join(","))).unwrap();
    }
}

/// Toy seeds evaluated every 500 steps up to 2,000 (and episodes of 40 steps, so mtrl's
/// cadence is every 1,000): `best` at step 500, `last` at step 2,000, nothing solved elsewhere
/// but what the untrained policy solved.
fn toy_seed(seed: u64, untrained: [f64; 4], best: [f64; 4], last: [f64; 4]) -> (u64, Vec<(u64, Vec<f64>)>) {
    (seed, vec![(0, untrained.into()), (500, best.into()), (1000, untrained.into()), (1500, untrained.into()), (2000, last.into())])
}

const TOY_SETS: [&str; 3] = ["run.eval_every=500", "run.steps=2000", "env.max_episode_steps=40"];

fn report(runs: &[&Path], out: &Path) -> Output {
    let mut args = vec!["report"];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    mt10(&args)
}

/// The cells of the table row that starts with `| label |` in the section after `heading`.
fn row<'a>(table: &'a str, heading: &str, label: &str) -> Vec<&'a str> {
    let section = &table[table.find(heading).unwrap_or_else(|| panic!("no {heading:?} in {table}"))..];
    let line = section.lines().find(|l| l.starts_with(&format!("| {label} |"))).unwrap_or_else(|| panic!("no row {label} in {section}"));
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

const EVERY: &str = "Success at every evaluation";
const MTRL: &str = "Success at mtrl's cadence";

#[test]
fn tables_give_mean_sem_iqm_ci_improvement_over_ls_and_never_learned_at_both_cadences() {
    let (ls, fairgrad, nash, out) = (scratch("ls"), scratch("fairgrad"), scratch("nash"), scratch("out"));
    let zero = [0.0; 4];
    // ls: seed 3 never beats its untrained policy (which solves task 3 at step 0).
    write_run(
        &ls,
        "toy",
        "ls",
        &TOY_SETS,
        &vec![
            toy_seed(1, zero, [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
            toy_seed(2, zero, [1.0, 1.0, 0.0, 0.0], zero),
            toy_seed(3, [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], zero),
        ],
    );
    write_run(
        &fairgrad,
        "toy",
        "fairgrad",
        &TOY_SETS,
        &vec![
            toy_seed(1, zero, [1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]),
            toy_seed(2, zero, [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]),
            toy_seed(3, zero, [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
        ],
    );
    write_run(&nash, "toy", "nash", &TOY_SETS, &vec![toy_seed(1, zero, [1.0, 0.0, 0.0, 0.0], zero), toy_seed(2, zero, [1.0, 1.0, 0.0, 0.0], zero)]);
    let result = report(&[&ls, &fairgrad, &nash], &out);
    let table = String::from_utf8_lossy(&result.stdout).to_string();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));

    let ls_row = row(&table, EVERY, "ls");
    // method, seeds, steps, evaluated, best, final, best IQM, final IQM, P(best), P(final), never learned, second half
    assert_eq!(ls_row.len(), 12, "{ls_row:?}");
    assert_eq!(&ls_row[..4], ["ls", "3", "2000", "every 500"]);
    // Best mean success per seed: 0.25, 0.5, 0.25: mean 1/3, s.e.m. sqrt((1/48 + 1/12 + 1/48) / 2 / 3) = 0.083.
    assert_eq!(ls_row[4], "0.333 ± 0.083");
    assert_eq!(ls_row[5], "0.083 ± 0.083");
    // 12 scores of which 4 are 1: the middle six (after cutting three from each end) hold one 1.
    assert!(ls_row[6].starts_with("0.167 ["), "{ls_row:?}");
    assert_eq!(ls_row[8], "-", "no improvement of ls over itself");
    assert_eq!(ls_row[10], "1 of 3");
    let fairgrad_row = row(&table, EVERY, "fairgrad");
    // Best: 9 ones in 12 scores; the middle six are all 1.
    assert!(fairgrad_row[6].starts_with("1.000 ["), "{fairgrad_row:?}");
    // P(fairgrad's best > ls's) per task, over the 9 pairs of seeds, ties counting half:
    // task 0: [1,1,1] vs [1,1,0]: 3 wins + 6 ties = 6/9; task 1: [1,1,1] vs [0,1,0]: 6 + 3/2;
    // task 2: [1,1,0] vs [0,0,0]: 6 + 3/2; task 3: [0,1,0] vs [0,0,1]: 2 wins + 5 ties = 4.5/9.
    let expected = (6.0 / 9.0 + 7.5 / 9.0 + 7.5 / 9.0 + 4.5 / 9.0) / 4.0;
    assert!(fairgrad_row[8].starts_with(&format!("{expected:.3} [")), "{expected}: {fairgrad_row:?}");
    assert_eq!(fairgrad_row[10], "0 of 3");
    let nash_row = row(&table, EVERY, "nash");
    assert!(!nash_row[6].contains('['), "two seeds: no interval, {nash_row:?}");
    assert!(!nash_row[8].contains('[') && nash_row[8] != "-", "{nash_row:?}");
    assert!(table.contains("No confidence intervals for `nash`: fewer than 3 seeds"), "{table}");
    assert!(table.contains("Nash-MTL paper") && table.contains("FAMO's issue 12"), "{table}");
    assert!(!table.contains("Meta-World v3"), "toy runs are not compared with the papers: {table}");

    // At mtrl's cadence (every 1,000 steps) the evaluation at 500 is not made: the best is the
    // untrained policy's or the last one, and ls seed 1 (final = best) is the only one to learn.
    let ls_mtrl = row(&table, MTRL, "ls");
    assert_eq!(ls_mtrl.len(), 11, "{ls_mtrl:?}");
    assert_eq!(ls_mtrl[3], "every 1000");
    assert_eq!(ls_mtrl[4], "0.167 ± 0.083");
    assert_eq!(ls_mtrl[10], "2 of 3");
    assert_eq!(row(&table, MTRL, "nash")[10], "2 of 2");

    let csv = std::fs::read_to_string(out.join("report.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let ls_csv: Vec<&str> = csv.lines().find(|l| l.starts_with("\"ls\"")).unwrap().split(',').collect();
    assert_eq!(header.len(), ls_csv.len(), "{csv}");
    let column = |name: &str| ls_csv[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}: {header:?}"))];
    assert_eq!(column("never_learned"), "1");
    assert_eq!(column("never_learned_mtrl_cadence"), "2");
    assert!(column("best_success_iqm_low").parse::<f64>().unwrap() <= column("best_success_iqm").parse::<f64>().unwrap());

    // rliable's layout: numpy.loadtxt(path, delimiter=",") skips the comments, 3 seeds x 4 tasks.
    let scores = std::fs::read_to_string(out.join("scores/fairgrad-best.csv")).unwrap();
    let rows: Vec<&str> = scores.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows, ["1,1,1,0", "1,1,1,1", "1,1,0,0"], "{scores}");
    assert!(out.join("scores/ls-final-mtrl-cadence.csv").is_file());
    for png in ["success.png", "profile.png", "weights-ls.png", "weights-nash.png"] {
        assert!(std::fs::read(out.join(png)).unwrap().starts_with(b"\x89PNG"), "{png}");
    }
    for dir in [ls, fairgrad, nash, out] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn metaworld_tables_carry_the_v3_threshold_note() {
    let (run, out) = (scratch("metaworld"), scratch("metaworld-out"));
    let evaluations = |s: f64| vec![(0, vec![0.0; 10]), (5000, vec![s; 10]), (10_000, vec![s; 10])];
    write_run(&run, "mt10-cpu", "ls", &["run.steps=10000"], &vec![(1, evaluations(0.1)), (2, evaluations(0.2)), (3, evaluations(0.3))]);
    let result = report(&[&run], &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let table = String::from_utf8_lossy(&result.stdout);
    // Two headline tables and one per-task table, each followed by the note.
    let notes = table.lines().filter(|l| l.starts_with("Note: these runs use Meta-World v3")).count();
    assert_eq!(notes, 3, "{table}");
    let note = table.lines().find(|l| l.starts_with("Note:")).unwrap();
    for threshold in ["push <= 0.05 (v1 <= 0.07)", "drawer-open", "drawer-close <= 0.055", "button-press-topdown <= 0.024", "docs/report.md"] {
        assert!(note.contains(threshold), "{note}");
    }
    assert_eq!(row(&table, EVERY, "ls")[3], "every 5000");
    assert_eq!(row(&table, MTRL, "ls")[3], "every 15000");
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_missing_or_damaged_file_is_one_line_naming_it_and_exit_status_2() {
    let zero = [0.0; 4];
    let seeds = vec![toy_seed(1, zero, [1.0, 0.0, 0.0, 0.0], zero), toy_seed(2, zero, zero, zero)];
    let metrics = "seed-1/metrics.csv";
    let cases: [(&str, &str, Option<&str>, &str); 9] = [
        ("config missing", "config.toml", None, "config.toml is missing"),
        ("config garbled", "config.toml", Some("[run\nsteps = "), "config.toml"),
        ("metrics missing", metrics, None, "metrics.csv is missing"),
        ("metrics empty", metrics, Some(""), "metrics.csv is empty"),
        ("metrics truncated", metrics, Some("cut"), "metrics.csv line 6: "),
        ("metrics garbled", metrics, Some("step,wall_time_s,mean_success,success:a\n\u{0}\u{7}xyz"), "metrics.csv line 1"),
        ("success above 1", metrics, Some("over"), "metrics.csv line 2: a success rate outside [0, 1]"),
        ("weights missing", "seed-2/weights.csv", None, "seed-2/weights.csv is missing"),
        ("weights garbled", "seed-2/weights.csv", Some("step,component,a,b,c,d\n100,critic,0.25,zz,0.25,0.25\n"), "seed-2/weights.csv line 2: malformed"),
    ];
    for (case, file, damage, message) in cases {
        let (run, out) = (scratch("damaged"), scratch("damaged-out"));
        write_run(&run, "toy", "ls", &TOY_SETS, &seeds);
        let path = run.join(file);
        match damage {
            None => std::fs::remove_file(&path).unwrap(),
            Some("cut") => {
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, &text[..text.len() - 20]).unwrap();
            }
            Some("over") => {
                let header = std::fs::read_to_string(&path).unwrap().lines().next().unwrap().to_string();
                std::fs::write(&path, format!("{header}\n0,0.000,0.375,1.5,0,0,0,-1.5,-1.5,-1.5,-1.5\n")).unwrap();
            }
            Some(contents) => std::fs::write(&path, contents).unwrap(),
        }
        let result = report(&[&run], &out);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{case}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{case}: one line, got {stderr}");
        assert!(stderr.starts_with("mt10: ") && stderr.contains(message), "{case}: {stderr}");
        assert!(stderr.contains(run.to_str().unwrap()), "{case}: names the file with its directory: {stderr}");
        assert!(!out.exists(), "{case}: wrote {}", out.display());
        std::fs::remove_dir_all(&run).unwrap();
    }
}

#[test]
fn seeds_that_have_not_started_are_left_out_with_a_line_saying_so() {
    let (run, out) = (scratch("partial"), scratch("partial-out"));
    let zero = [0.0; 4];
    write_run(&run, "toy", "ls", &TOY_SETS, &vec![toy_seed(1, zero, [1.0, 0.0, 0.0, 0.0], zero), toy_seed(2, zero, zero, zero)]);
    std::fs::remove_dir_all(run.join("seed-2")).unwrap();
    let result = report(&[&run], &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert!(String::from_utf8_lossy(&result.stderr).contains("seed-2 has not started; left out"));
    assert_eq!(row(&String::from_utf8_lossy(&result.stdout), EVERY, "ls")[1], "1");
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_budget_of_steps_or_wall_time_reads_each_seed_up_to_it_and_refuses_seeds_short_of_it() {
    let (ls, out) = (scratch("budget-ls"), scratch("budget-out"));
    let zero = [0.0; 4];
    // Evaluations at steps 0, 500, ..., 2000, ending at step / 100 seconds of training.
    write_run(&ls, "toy", "ls", &TOY_SETS, &vec![toy_seed(1, zero, [1.0, 1.0, 0.0, 0.0], [1.0; 4]), toy_seed(2, zero, [1.0, 0.0, 0.0, 0.0], [1.0; 4])]);
    let with = |budget: &[&str]| {
        let mut args = vec!["report", ls.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(budget);
        mt10(&args)
    };
    let whole = with(&[]);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    assert_eq!(row(&String::from_utf8_lossy(&whole.stdout), EVERY, "ls")[5], "1.000 ± 0.000", "final: step 2000");
    for (budget, steps) in [(["--at-step", "1200"], "1000"), (["--at-wall-time", "15s"], "1500"), (["--at-wall-time", "0.25m"], "1500")] {
        let result = with(&budget);
        let table = String::from_utf8_lossy(&result.stdout).to_string();
        assert!(result.status.success(), "{budget:?}: {}", String::from_utf8_lossy(&result.stderr));
        let ls_row = row(&table, EVERY, "ls");
        assert_eq!(ls_row[2], steps, "{budget:?}: {ls_row:?}");
        assert_eq!(ls_row[4], "0.375 ± 0.125", "{budget:?}: best, at step 500");
        assert_eq!(ls_row[5], "0.000 ± 0.000", "{budget:?}: final, the untrained-like evaluation before the budget");
        assert!(table.starts_with("Budget: each seed up to"), "{table}");
    }
    std::fs::remove_dir_all(&out).unwrap();
    for budget in [["--at-step", "2500"], ["--at-wall-time", "30"]] {
        let result = with(&budget);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{budget:?}: {stderr}");
        assert!(stderr.contains("seed-1") && stderr.contains("short of") && stderr.lines().count() == 1, "{stderr}");
        assert!(!out.exists(), "nothing written");
    }
    for bad in [vec!["--at-step", "5", "--at-wall-time", "3"], vec!["--at-wall-time", "soon"]] {
        assert_eq!(with(&bad).status.code(), Some(2), "{bad:?}");
    }
    std::fs::remove_dir_all(&ls).unwrap();
}
