//! Output checked by the real programs that read it: Graphviz for `plan
//! --format dot`, Mermaid's own parser for `--format mermaid`, headless
//! Chromium for the HTML report, bash/zsh/fish for the completion scripts,
//! groff for the man page. A missing program fails the test (scripts/test.sh
//! installs them all) rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{BIN, Test, repo};

/// Runs `program` with `args` and `stdin`; panics naming the package when
/// the program is missing.
fn tool(program: &str, package: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} ({package}) is missing ({e}): run scripts/test.sh, which installs it")
        });
    // A tool may exit without reading all of it; its exit status says more.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn example_plan(format: &str) -> String {
    let root = repo();
    let (out, _) = Test::new()
        .args(["plan", "--format", format])
        .args([
            root.join("runbooks/datacenter-power-loss.yaml")
                .display()
                .to_string(),
            "-i".to_string(),
            root.join("inventory/hospital.yaml").display().to_string(),
        ])
        .run();
    String::from_utf8(out.stdout).unwrap()
}

/// Phases with no step of their own, between two that have steps.
const EMPTY_PHASE: &str = r#"
    version: 1
    name: gaps
    phases:
      - {id: a}
      - {id: b, depends_on: [a]}
      - {id: c, depends_on: [b]}
    steps:
      - {id: s1, phase: a, run: "true"}
      - {id: s3, phase: c, run: "true"}
    "#;

fn dot(source: &str, format: &str) -> Output {
    let out = tool(
        "dot",
        "graphviz",
        &[&format!("-T{format}")],
        source.as_bytes(),
    );
    assert!(
        out.status.success(),
        "dot failed: {}\n{source}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Graphviz's SVG starts with a DOCTYPE.
fn svg_doc(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(svg, options).unwrap()
}

fn bounding_box(value: &serde_json::Value) -> [f64; 4] {
    let v: Vec<f64> = value
        .as_str()
        .unwrap()
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    [v[0], v[1], v[2], v[3]]
}

/// Whether (x, y) lies on the border of `b` (within a point), not inside.
fn on_border([x0, y0, x1, y1]: [f64; 4], (x, y): (f64, f64)) -> bool {
    let near = |a: f64, b: f64| (a - b).abs() < 1.5;
    let within = |v: f64, lo: f64, hi: f64| v > lo - 1.5 && v < hi + 1.5;
    (within(y, y0, y1) && (near(x, x0) || near(x, x1)))
        || (within(x, x0, x1) && (near(y, y0) || near(y, y1)))
}

#[test]
fn graphviz_renders_the_example_plan_with_phase_edges_between_clusters() {
    let source = example_plan("dot");
    let svg = dot(&source, "svg");
    assert_eq!(String::from_utf8_lossy(&svg.stderr), "", "dot warned");
    let svg = String::from_utf8(svg.stdout).unwrap();
    let doc = svg_doc(&svg);
    let clusters = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("cluster"))
        .count();
    let plan: serde_json::Value = serde_json::from_str(&example_plan("json")).unwrap();
    let phases = plan["phases"].as_array().unwrap();
    assert_eq!(clusters, phases.len(), "one box per phase");

    // With `compound=true` an edge with `lhead`/`ltail` is clipped at the
    // clusters' borders; without it Graphviz ignores both, silently, and
    // the edge joins two steps inside the boxes.
    let layout: serde_json::Value = serde_json::from_slice(&dot(&source, "json").stdout).unwrap();
    let clusters: std::collections::HashMap<&str, [f64; 4]> = layout["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            o["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("cluster_"))
        })
        .map(|o| (o["name"].as_str().unwrap(), bounding_box(&o["bb"])))
        .collect();
    let phase_edges: Vec<_> = layout["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("lhead").is_some())
        .collect();
    // One per phase each phase depends on.
    let depends: usize = phases
        .iter()
        .map(|p| p["depends_on"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(phase_edges.len(), depends, "{source}");
    for e in phase_edges {
        let pos = e["pos"].as_str().unwrap();
        let point = |p: &str| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse::<f64>().unwrap(), y.parse::<f64>().unwrap())
        };
        let mut parts = pos.split(' ');
        let head = point(parts.next().unwrap().strip_prefix("e,").unwrap());
        let tail = point(parts.next().unwrap());
        let lhead = clusters[e["lhead"].as_str().unwrap()];
        let ltail = clusters[e["ltail"].as_str().unwrap()];
        assert!(on_border(lhead, head), "{pos} ends inside {lhead:?}");
        assert!(on_border(ltail, tail), "{pos} starts inside {ltail:?}");
    }
}

#[test]
fn graphviz_keeps_a_phase_without_steps_and_its_edges() {
    let (out, _) = Test::new()
        .runbook(EMPTY_PHASE)
        .args(["plan", "runbook.yaml", "--format", "dot"])
        .run();
    let source = String::from_utf8(out.stdout).unwrap();
    let svg = dot(&source, "svg");
    assert_eq!(
        String::from_utf8_lossy(&svg.stderr),
        "",
        "dot warned:\n{source}"
    );
    let svg = String::from_utf8(svg.stdout).unwrap();
    let doc = svg_doc(&svg);
    let titles: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("cluster"))
        .filter_map(|n| n.children().find(|c| c.has_tag_name("title")))
        .filter_map(|t| t.text())
        .collect();
    assert_eq!(titles, ["cluster_a", "cluster_b", "cluster_c"]);
    let dashed = doc
        .descendants()
        .filter(|n| n.attribute("stroke-dasharray").is_some())
        .count();
    assert_eq!(dashed, 2, "both phase edges drawn:\n{svg}");
}

/// `tests/mermaid/parse.mjs` with the `mermaid` package, installed under
/// target/mermaid by scripts/test.sh.
fn mermaid_parse(source: &str) -> Output {
    let dir = repo().join("target/mermaid");
    assert!(
        dir.join("node_modules/mermaid").is_dir(),
        "the mermaid package is missing from {}: run scripts/test.sh, which installs it",
        dir.display()
    );
    tool(
        "node",
        "nodejs",
        &[repo().join("tests/mermaid/parse.mjs").to_str().unwrap()],
        source.as_bytes(),
    )
}

#[test]
fn mermaid_parses_the_example_plan_and_a_phase_without_steps() {
    let (out, _) = Test::new()
        .runbook(EMPTY_PHASE)
        .args(["plan", "runbook.yaml", "--format", "mermaid"])
        .run();
    for source in [
        example_plan("mermaid"),
        String::from_utf8(out.stdout).unwrap(),
    ] {
        let parsed = mermaid_parse(&source);
        assert!(
            parsed.status.success(),
            "{}\n{source}",
            String::from_utf8_lossy(&parsed.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&parsed.stdout).trim(),
            "flowchart-v2"
        );
    }
    // The parser does reject what is not Mermaid.
    let bad = mermaid_parse("flowchart LR\n  a --> b[[[x\n");
    assert!(!bad.status.success());
}

/// A real run (local transport): phases, a long title, a failure that the
/// run goes on after, a step blocked by it.
const REAL_RUN: &str = r#"
    version: 1
    name: carry
    title: Restore the records service after a power loss
    phases:
      - {id: network, title: Network core, rto: 10m}
      - {id: apps, title: Clinical applications, depends_on: [network], rto: 20m}
    steps:
      - id: power
        title: Both power feeds are back and the UPS reports mains
        phase: network
        run: "true"
      - id: switches-with-a-rather-long-id
        title: Core switches answer and their uplinks to both hospitals are up
        phase: network
        depends_on: [power]
        run: "sleep 0.2"
      - id: dns
        title: Resolvers answer for the internal zone
        phase: network
        depends_on: [power]
        run: "echo resolver down >&2; exit 1"
        on_failure: continue
      - id: app
        title: Records application
        phase: apps
        depends_on: [dns]
        run: "true"
    "#;

fn real_run_report() -> (Test, PathBuf) {
    let (_, t) = Test::new()
        .runbook(REAL_RUN)
        .args(["run", "runbook.yaml", "--state-dir", "state", "-q"])
        .status(1)
        .run();
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args([
            "report",
            "--state-dir",
            "state",
            "--format",
            "html",
            "-o",
            "report.html",
        ])
        .env("HOME", t.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = t.path().join("report.html");
    (t, html)
}

/// Measures, in the browser's own layout, that every label of the timeline
/// ends before the bars begin, and that the legend is laid out; the result
/// is written into the page for `--dump-dom`.
const LAYOUT_PROBE: &str = r#"<script>
const svg = document.querySelector('svg');
const left = +svg.querySelector('line').getAttribute('x1');
const overflow = [];
let labels = 0;
for (const t of svg.querySelectorAll('text')) {
  const x = +t.getAttribute('x');
  if (x >= left) continue;
  labels++;
  const end = x + t.getComputedTextLength();
  if (end > left) overflow.push(t.textContent + ' ends at ' + Math.round(end));
}
const keys = [...document.querySelectorAll('.legend .key')]
  .filter(k => k.getBoundingClientRect().width > 0).map(k => k.textContent);
// Phase rows are bold: no style sheet rule may override that.
const phases = [...svg.querySelectorAll('text[font-weight="700"]')];
const bold = phases.length > 0 && phases.every(t => getComputedStyle(t).fontWeight === '700');
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({labels, overflow, keys, bold, width: svg.getBoundingClientRect().width});
document.body.append(out);
</script>"#;

fn chromium_dump_dom(page: &Path, profile: &Path) -> String {
    let out = tool(
        "timeout",
        "coreutils",
        &[
            "120",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1200,900",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ],
        b"",
    );
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && dom.contains("<html"),
        "chromium (Debian's `chromium`) could not render the page: run scripts/test.sh, which installs it\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

#[test]
fn html_report_of_a_real_run_lays_out_in_headless_chromium() {
    let (t, html) = real_run_report();
    let report = std::fs::read_to_string(&html).unwrap();
    let probed = t.path().join("probed.html");
    std::fs::write(
        &probed,
        report.replace("</body>", &format!("{LAYOUT_PROBE}</body>")),
    )
    .unwrap();
    let dom = chromium_dump_dom(&probed, &t.path().join("chromium"));
    let json = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe did not run:\n{dom}"));
    let probe: serde_json::Value = serde_json::from_str(json).unwrap();
    // Two phase rows and four step rows, each label within its column.
    assert_eq!(probe["labels"], 6, "{probe}");
    assert_eq!(probe["overflow"], serde_json::json!([]), "{probe}");
    assert_eq!(probe["bold"], true, "{probe}");
    assert!(probe["width"].as_f64().unwrap() > 500.0, "{probe}");
    let keys: Vec<&str> = probe["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for key in [
        "ok",
        "failed",
        "dark outline: failed or timed out",
        "grey text: never started",
    ] {
        assert!(keys.contains(&key), "legend lacks {key}: {keys:?}");
    }
}

fn completions(shell: &str) -> String {
    let (out, _) = Test::new().args(["completions", shell]).run();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_loads_and_completes_subcommands_and_values() {
    let script = completions("bash");
    let complete = |words: &str| {
        let program = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n\
             complete -p runbook >&2\n_runbook runbook \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = tool(
            "bash",
            "bash",
            &["--norc", "--noprofile", "-s"],
            program.as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("runbook pl").trim(), "plan");
    let formats = complete("runbook plan --format ''");
    let mut formats: Vec<&str> = formats.lines().collect();
    formats.sort_unstable();
    assert_eq!(formats, ["dot", "json", "mermaid", "text"]);
    let shells = complete("runbook completions ''");
    assert!(shells.lines().any(|l| l == "fish"), "{shells}");
}

#[test]
fn zsh_and_fish_completions_parse_in_their_shells() {
    for (shell, package, check) in [("zsh", "zsh", "-n"), ("fish", "fish", "--no-execute")] {
        let script = completions(shell);
        assert!(script.contains("resume"), "{shell}: {script}");
        let out = tool(shell, package, &[check], script.as_bytes());
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    Test::new()
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_contains("invalid value 'tcsh'")
        .run();
}

/// The page as groff renders it for a terminal; fails on any warning.
fn groff(roff: &str) -> String {
    let out = tool(
        "groff",
        "groff-base",
        &["-man", "-Tutf8", "-ww", "-rLL=100n"],
        roff.as_bytes(),
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bold and underline are drawn with backspaces on a terminal.
    let text = String::from_utf8(out.stdout).unwrap();
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn man_page_renders_with_its_sections_and_every_command() {
    let (out, _) = Test::new().args(["man"]).run();
    let roff = String::from_utf8(out.stdout).unwrap();
    assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{roff}");
    assert!(roff.contains(".TH runbook 1"), "{roff}");
    let page = groff(&roff);
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "SUBCOMMANDS",
        "VERSION",
    ] {
        assert!(page.lines().any(|l| l == section), "no {section}:\n{page}");
    }
    for command in [
        "validate",
        "plan",
        "run",
        "status",
        "resume",
        "report",
        "verify",
        "evidence",
        "completions",
        "man",
    ] {
        assert!(
            page.contains(&format!("runbook-{command}(1)")),
            "{command}:\n{page}"
        );
    }
    assert!(page.contains("--state-dir"), "{page}");

    let (out, _) = Test::new().args(["man", "plan"]).run();
    let page = groff(&String::from_utf8(out.stdout).unwrap());
    assert!(
        page.contains("runbook-plan - Show the execution plan"),
        "{page}"
    );
    assert!(page.contains("--format"), "{page}");
    Test::new()
        .args(["man", "plam"])
        .status(2)
        .stderr_contains("no command `plam`; one of: validate, plan,")
        .run();
}
