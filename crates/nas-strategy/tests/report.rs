//! The report of a real (analytic) search: the page exists, every figure it references exists
//! next to it, and every figure is well-formed SVG (XML) that names what it shows.

use nas_estimate::{Budget, EstimateError, Estimator, Metrics};
use nas_space::TextFormat;
use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas_strategy::report::Report;
use nas_strategy::{RandomSearch, search};

/// Accuracy rises with 3×3 convolutions, cost with every convolution.
struct Analytic;

impl Estimator<Nb201Arch> for Analytic {
    fn estimate(&mut self, arch: &Nb201Arch, _: &Budget) -> Result<Metrics, EstimateError> {
        let count = |op| arch.edges.iter().filter(|&&e| e == op).count() as f64;
        let (c3, c1) = (count(Nb201Op::NorConv3x3), count(Nb201Op::NorConv1x1));
        if count(Nb201Op::None) == 6.0 {
            return Err(EstimateError::Failed("an empty cell".into()));
        }
        Ok(
            Metrics::new(80.0 + 2.0 * c3 + c1 - 0.5 * count(Nb201Op::AvgPool3x3))
                .with("macs", 1.0e6 * (1.0 + 9.0 * c3 + c1))
                .with("params", 1000.0 * (1.0 + 9.0 * c3 + c1)),
        )
    }
}

/// `src="..."` values of `<img>` tags.
fn image_sources(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect()
}

#[test]
fn a_search_report_and_every_figure_it_references_exist_and_parse() {
    let space = Nb201Space::default();
    let mut strategy = RandomSearch::new(3);
    let outcome = search::run(&space, &mut strategy, &mut Analytic, 30, |_| {}).unwrap();
    let report =
        Report::for_search("analytic search", &space, &outcome.trials, "accuracy (%)").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = report.write(dir.path()).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let sources = image_sources(&html);
    assert_eq!(
        sources,
        ["best_so_far.svg", "best_architecture.svg", "pareto.svg"]
    );
    for src in &sources {
        let text = std::fs::read_to_string(dir.path().join(src)).unwrap();
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{src} is not well-formed XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{src}");
    }
    // The best trial's cell is drawn: every operation of it is a labelled box.
    let best = outcome
        .trials
        .iter()
        .filter_map(|t| t.objective().map(|o| (o, t)))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.id.cmp(&a.1.id)))
        .unwrap()
        .1;
    let diagram = std::fs::read_to_string(dir.path().join("best_architecture.svg")).unwrap();
    for op in best.arch.edges.iter().filter(|&&op| op != Nb201Op::None) {
        assert!(diagram.contains(op.name()), "{} missing", op.name());
    }
    assert!(html.contains(&space.to_text(&best.arch)));
    // One row per trial, failures included.
    assert_eq!(html.matches("<tr><td>").count(), outcome.trials.len());
}
