//! The corpus: every `tests/cases/*.seg` compiled against the demo catalog, each stage
//! snapshotted — diagnostics, typed IR, the DataFusion plan and the segment sizes.
//! Adding a case is adding a file.

use std::fmt::Write;
use std::path::Path;

use segql::Session;

#[tokio::test]
async fn corpus() {
    let mut cases: Vec<_> = std::fs::read_dir("tests/cases")
        .expect("tests/cases")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "seg"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "the corpus has cases");
    for case in cases {
        let name = case
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let snapshot = compile_case(&case).await;
        insta::assert_snapshot!(name, snapshot);
    }
}

async fn compile_case(path: &Path) -> String {
    let mut session = Session::open(Path::new("examples/shop/segql.toml"))
        .await
        .expect("demo catalog");
    let text = std::fs::read_to_string(path).expect("case");
    let name = format!(
        "cases/{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    );
    let mut out = String::new();
    match session.add_source(&name, &text) {
        Err(report) => {
            let _ = writeln!(out, "== diagnostics\n{}", report.render(false));
            return out;
        }
        Ok(warnings) if !warnings.is_empty() => {
            let warnings = warnings.clone();
            let _ = writeln!(
                out,
                "== warnings\n{}",
                segql::render::render_all(warnings.iter(), session.sources(), false)
            );
        }
        Ok(_) => {}
    }
    let segments: Vec<String> = session
        .program()
        .segments
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for segment in &segments {
        let checked = session.program().segment(segment).expect("segment");
        let _ = writeln!(
            out,
            "== ir\n{}",
            segql::check::display::segment_ir(checked, session.program())
        );
        let plan = session.plan_segments(&[segment], &[]).expect("plan");
        let _ = writeln!(out, "== plan\n{}\n", plan.display_indent());
    }
    let names: Vec<&str> = segments.iter().map(String::as_str).collect();
    let counts = session.counts(&names).await.expect("counts");
    let _ = writeln!(out, "== sizes");
    for (segment, size) in counts {
        let _ = writeln!(out, "{segment}: {size}");
    }
    out
}
