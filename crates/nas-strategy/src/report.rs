//! Reports of a search that people can look at: an HTML page beside SVG figures.
//!
//! A [`Report`] is a titled page of sections: paragraphs, figures and tables. The figures are
//! SVG files written beside `report.html` (the page links them with `<img>`, so each opens on
//! its own too):
//!
//! - [`Report::curve`]: a value against trials or epochs with its best so far (plotted with
//!   `plotters`);
//! - [`Report::architecture`]: an architecture's graph ([`ArchGraph`], from any space that
//!   implements [`ToGraph`]) laid out in layers (`layout-rs`, a Rust implementation of
//!   Graphviz's `dot` layout): cells as DAGs from top to bottom, chains as a row of blocks;
//! - [`Report::pareto`]: accuracy against cost (MACs, latency...) with the Pareto front;
//! - [`Report::table`]: any table, e.g. every trial.
//!
//! [`Report::for_search`] assembles the usual page of a multi-trial search from its trials:
//! best so far against trials, the best architecture, accuracy against MACs where the
//! estimator measured them, and the table of trials.
//!
//! ```
//! use nas_space::nb201::Nb201Space;
//! use nas_space::{SearchSpace, ToGraph};
//! use nas_strategy::report::Report;
//! use rand::{SeedableRng, rngs::ChaCha8Rng};
//!
//! let space = Nb201Space::default();
//! let cell = space.sample(&mut ChaCha8Rng::seed_from_u64(0));
//! let mut report = Report::new("My search");
//! report
//!     .paragraph("Three epochs of a toy run.")
//!     .curve("accuracy.svg", "validation accuracy", "epoch", "accuracy (%)", &[61.0, 70.5, 69.0])?
//!     .architecture("cell.svg", "the derived cell", &space.graph(&cell)?)?
//!     .pareto("pareto.svg", "accuracy against MACs", "MACs", "accuracy (%)", &[
//!         (1.0e6, 70.0, "a".into()), (2.0e6, 72.0, "b".into()), (3.0e6, 71.0, "c".into()),
//!     ])?
//!     .table(&["epoch", "accuracy"], vec![vec!["1".into(), "61.0".into()]]);
//! let dir = tempfile::tempdir()?;
//! let page = report.write(dir.path())?;
//! assert!(std::fs::read_to_string(&page)?.contains("<img src=\"cell.svg\""));
//! assert!(std::fs::read_to_string(dir.path().join("cell.svg"))?.contains("<svg"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use nas_space::{ArchGraph, SpaceError, TextFormat, ToGraph};

use crate::search::TrialRecord;

/// Why a report could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure could not be drawn (the message says which and why).
    #[error("cannot draw the figure `{file}`: {reason}")]
    Draw {
        /// The figure's file name.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// A figure's file name is not a plain `name.svg` (no folders, no other extension).
    #[error("figure file name `{0}` must be a plain file name ending in .svg (no folders)")]
    FileName(String),
    /// The report's folder or a file in it could not be written.
    #[error("cannot write `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An architecture has no graph.
    #[error(transparent)]
    Space(#[from] SpaceError),
}

enum Section {
    Paragraph(String),
    Figure {
        file: String,
        caption: String,
        svg: String,
    },
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// An HTML page of paragraphs, SVG figures and tables (see the [module docs](self)).
pub struct Report {
    title: String,
    sections: Vec<Section>,
}

impl Report {
    /// An empty report titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            sections: Vec::new(),
        }
    }

    /// The figure files the report writes beside the page, in order.
    pub fn figures(&self) -> Vec<&str> {
        self.sections
            .iter()
            .filter_map(|s| match s {
                Section::Figure { file, .. } => Some(file.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Puts a paragraph of text first, before every section added so far (an introduction).
    pub fn intro(&mut self, text: impl Into<String>) -> &mut Self {
        self.sections.insert(0, Section::Paragraph(text.into()));
        self
    }

    /// Adds a paragraph of text.
    pub fn paragraph(&mut self, text: impl Into<String>) -> &mut Self {
        self.sections.push(Section::Paragraph(text.into()));
        self
    }

    /// Adds a table (cells are escaped; rows shorter than the header are padded).
    pub fn table(&mut self, headers: &[&str], rows: Vec<Vec<String>>) -> &mut Self {
        self.sections.push(Section::Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        });
        self
    }

    /// Adds a line chart of `values` (one per trial or epoch, numbered from 1) and of their
    /// best so far. Non-finite values (failed trials) are left out of the chart.
    pub fn curve(
        &mut self,
        file: &str,
        caption: &str,
        x_label: &str,
        y_label: &str,
        values: &[f64],
    ) -> Result<&mut Self, ReportError> {
        check_file(file)?;
        let svg = charts::curve(caption, x_label, y_label, values).map_err(|reason| {
            ReportError::Draw {
                file: file.into(),
                reason,
            }
        })?;
        Ok(self.figure(file, caption, svg))
    }

    /// Adds a scatter plot of `(cost, value, label)` points with the Pareto front (lowest cost
    /// for the highest value) drawn as a step line and its points highlighted.
    pub fn pareto(
        &mut self,
        file: &str,
        caption: &str,
        x_label: &str,
        y_label: &str,
        points: &[(f64, f64, String)],
    ) -> Result<&mut Self, ReportError> {
        check_file(file)?;
        let svg = charts::pareto(caption, x_label, y_label, points).map_err(|reason| {
            ReportError::Draw {
                file: file.into(),
                reason,
            }
        })?;
        Ok(self.figure(file, caption, svg))
    }

    /// Adds the diagram of an architecture graph: a chain (every node with at most one input
    /// and one output) as a row of blocks, any other graph as layers from top to bottom.
    pub fn architecture(
        &mut self,
        file: &str,
        caption: &str,
        graph: &ArchGraph,
    ) -> Result<&mut Self, ReportError> {
        check_file(file)?;
        let svg = diagram::draw(graph).map_err(|reason| ReportError::Draw {
            file: file.into(),
            reason,
        })?;
        Ok(self.figure(file, caption, svg))
    }

    fn figure(&mut self, file: &str, caption: &str, svg: String) -> &mut Self {
        self.sections.push(Section::Figure {
            file: file.into(),
            caption: caption.into(),
            svg,
        });
        self
    }

    /// The page's HTML (figures referenced by file name).
    pub fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape(&self.title),
            STYLE,
            escape(&self.title)
        );
        for section in &self.sections {
            match section {
                Section::Paragraph(text) => {
                    let _ = writeln!(h, "<p>{}</p>", escape(text));
                }
                Section::Figure { file, caption, .. } => {
                    let _ = writeln!(
                        h,
                        "<figure>\n<img src=\"{}\" alt=\"{}\">\n<figcaption>{}</figcaption>\n</figure>",
                        escape(file),
                        escape(caption),
                        escape(caption)
                    );
                }
                Section::Table { headers, rows } => {
                    h.push_str("<table>\n<thead><tr>");
                    for head in headers {
                        let _ = write!(h, "<th>{}</th>", escape(head));
                    }
                    h.push_str("</tr></thead>\n<tbody>\n");
                    for row in rows {
                        h.push_str("<tr>");
                        for i in 0..headers.len().max(row.len()) {
                            let cell = row.get(i).map_or("", String::as_str);
                            let _ = write!(h, "<td>{}</td>", escape(cell));
                        }
                        h.push_str("</tr>\n");
                    }
                    h.push_str("</tbody>\n</table>\n");
                }
            }
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    /// Writes `report.html` and its figures into `dir` (created if needed); returns the page's
    /// path. Files of an earlier report there are replaced.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ReportError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for section in &self.sections {
            if let Section::Figure { file, svg, .. } = section {
                let path = dir.join(file);
                std::fs::write(&path, svg).map_err(io(&path))?;
            }
        }
        let page = dir.join("report.html");
        std::fs::write(&page, self.html()).map_err(io(&page))?;
        Ok(page)
    }

    /// The usual page of a multi-trial search: the objective of every trial and its best so
    /// far, the best architecture's diagram, the objective against `macs` where the trials
    /// measured it, and the table of trials (best first). `objective` names the objective in
    /// captions (e.g. "validation accuracy (%)").
    pub fn for_search<S: ToGraph + TextFormat>(
        title: &str,
        space: &S,
        trials: &[TrialRecord<S::Arch>],
        objective: &str,
    ) -> Result<Report, ReportError> {
        let mut report = Report::new(title);
        let complete: Vec<&TrialRecord<S::Arch>> =
            trials.iter().filter(|t| t.objective().is_some()).collect();
        let failed = trials.len() - complete.len();
        report.paragraph(format!(
            "{} trials, {} complete{}.",
            trials.len(),
            complete.len(),
            if failed > 0 {
                format!(", {failed} failed or pruned")
            } else {
                String::new()
            }
        ));
        let values: Vec<f64> = trials
            .iter()
            .map(|t| t.objective().unwrap_or(f64::NAN))
            .collect();
        report.curve(
            "best_so_far.svg",
            &format!("{objective} of each trial and best so far"),
            "trial",
            objective,
            &values,
        )?;
        let best = complete.iter().copied().max_by(|a, b| {
            a.objective()
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.objective().unwrap_or(f64::NEG_INFINITY))
                .then(b.id.cmp(&a.id))
        });
        if let Some(best) = best {
            report.architecture(
                "best_architecture.svg",
                &format!(
                    "best architecture ({objective} {:.2}): {}",
                    best.objective().unwrap_or(f64::NAN),
                    space.to_text(&best.arch)
                ),
                &space.graph(&best.arch)?,
            )?;
        }
        let points: Vec<(f64, f64, String)> = complete
            .iter()
            .filter_map(|t| Some((t.metric("macs")?, t.objective()?, format!("trial {}", t.id))))
            .collect();
        if !points.is_empty() {
            report.pareto(
                "pareto.svg",
                &format!("{objective} against multiply-accumulates, with the Pareto front"),
                "MACs per image",
                objective,
                &points,
            )?;
        }
        let mut sorted: Vec<&TrialRecord<S::Arch>> = trials.iter().collect();
        sorted.sort_by(|a, b| {
            b.objective()
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.objective().unwrap_or(f64::NEG_INFINITY))
                .then(a.id.cmp(&b.id))
        });
        let rows = sorted
            .iter()
            .map(|t| {
                let metric = |name: &str, digits: usize| {
                    t.metric(name)
                        .map_or(String::new(), |v| format!("{v:.digits$}"))
                };
                vec![
                    t.id.to_string(),
                    match &t.outcome {
                        crate::Outcome::Complete(m) => format!("{:.2}", m.objective),
                        crate::Outcome::Pruned(_) => "pruned".into(),
                        crate::Outcome::Failed(why) => format!("failed: {why}"),
                    },
                    metric("params", 0),
                    metric("macs", 0),
                    format!("{:.1}", t.seconds),
                    space.to_text(&t.arch),
                ]
            })
            .collect();
        report.table(
            &[
                "trial",
                objective,
                "parameters",
                "MACs",
                "seconds",
                "architecture",
            ],
            rows,
        );
        Ok(report)
    }
}

/// The indices of the Pareto-optimal points of `(cost, value)` pairs: no other point has a
/// lower or equal cost and a higher value (or equal value and lower cost). Sorted by cost.
/// Non-finite points are never on the front.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            front.push(i);
        }
    }
    front
}

fn check_file(file: &str) -> Result<(), ReportError> {
    let plain = Path::new(file).file_name().and_then(|n| n.to_str()) == Some(file);
    if plain && file.len() > 4 && file.ends_with(".svg") {
        Ok(())
    } else {
        Err(ReportError::FileName(file.into()))
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str =
    "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f3f3f3; }
td:last-child { font-family: monospace; }";

mod charts {
    use plotters::prelude::*;

    use super::pareto_front;

    const SIZE: (u32, u32) = (860, 480);

    fn range(values: impl Iterator<Item = f64> + Clone) -> Option<(f64, f64)> {
        let lo = values.clone().fold(f64::INFINITY, f64::min);
        let hi = values.fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite()) {
            return None;
        }
        let pad = ((hi - lo) * 0.08).max(hi.abs().max(1.0) * 2e-3);
        Some((lo - pad, hi + pad))
    }

    pub(super) fn curve(
        caption: &str,
        x_label: &str,
        y_label: &str,
        values: &[f64],
    ) -> Result<String, String> {
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| ((i + 1) as f64, v))
            .collect();
        let (lo, hi) =
            range(points.iter().map(|p| p.1)).ok_or("no finite value to plot".to_string())?;
        let mut best = f64::NEG_INFINITY;
        let best_so_far: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, v)| {
                best = best.max(v);
                (x, best)
            })
            .collect();
        let n = values.len().max(2) as f64;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0.5..n + 0.5, lo..hi)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc(x_label)
                .y_desc(y_label)
                .x_labels(values.len().clamp(2, 12))
                // Steps are whole numbers: a tick between two steps stays unlabelled.
                .x_label_formatter(&|x| {
                    if (x - x.round()).abs() < 1e-6 {
                        format!("{x:.0}")
                    } else {
                        String::new()
                    }
                })
                .draw()
                .map_err(|e| e.to_string())?;
            let blue = RGBColor(31, 119, 180);
            let orange = RGBColor(255, 127, 14);
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 3, blue.mix(0.6).filled())),
                )
                .map_err(|e| e.to_string())?
                .label("each")
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.filled()));
            chart
                .draw_series(LineSeries::new(best_so_far, orange.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label("best so far")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], orange));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    pub(super) fn pareto(
        caption: &str,
        x_label: &str,
        y_label: &str,
        points: &[(f64, f64, String)],
    ) -> Result<String, String> {
        let pairs: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
        let finite: Vec<(f64, f64)> = pairs
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let (x_lo, x_hi) =
            range(finite.iter().map(|p| p.0)).ok_or("no finite point to plot".to_string())?;
        let (y_lo, y_hi) =
            range(finite.iter().map(|p| p.1)).ok_or("no finite point to plot".to_string())?;
        let front: Vec<(f64, f64)> = pareto_front(&pairs).iter().map(|&i| pairs[i]).collect();
        let mut steps = Vec::with_capacity(front.len() * 2);
        for (k, &(x, y)) in front.iter().enumerate() {
            if k > 0 {
                steps.push((x, front[k - 1].1));
            }
            steps.push((x, y));
        }
        if let Some(&(_, y)) = front.last() {
            steps.push((x_hi, y));
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|x| format_si(*x))
                .draw()
                .map_err(|e| e.to_string())?;
            let grey = RGBColor(120, 120, 120);
            let red = RGBColor(214, 39, 40);
            chart
                .draw_series(
                    finite
                        .iter()
                        .map(|&p| Circle::new(p, 3, grey.mix(0.6).filled())),
                )
                .map_err(|e| e.to_string())?
                .label("architectures")
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, grey.filled()));
            chart
                .draw_series(LineSeries::new(steps, red.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label("Pareto front")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], red));
            chart
                .draw_series(front.iter().map(|&p| Circle::new(p, 4, red.filled())))
                .map_err(|e| e.to_string())?;
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    /// 1234567 → "1.23M".
    fn format_si(x: f64) -> String {
        let a = x.abs();
        if a >= 1e9 {
            format!("{:.2}G", x / 1e9)
        } else if a >= 1e6 {
            format!("{:.2}M", x / 1e6)
        } else if a >= 1e3 {
            format!("{:.1}k", x / 1e3)
        } else {
            format!("{x:.0}")
        }
    }
}

mod diagram {
    use layout::backends::svg::SVGWriter;
    use layout::core::base::Orientation;
    use layout::core::color::Color;
    use layout::core::geometry::Point;
    use layout::core::style::StyleAttr;
    use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
    use layout::topo::layout::VisualGraph;

    use nas_space::ArchGraph;

    /// Fill colours by operation family, so a reader tells convolutions from pooling and
    /// identities at a glance.
    fn fill(label: &str) -> u32 {
        let l = label.to_ascii_lowercase();
        if l == "input" || l == "output" || l.starts_with("input") || l.starts_with("output") {
            0xe8e8e8ff
        } else if l.contains("pool") {
            0xc7e9c0ff
        } else if l.contains("skip") || l.contains("identity") {
            0xfdd0a2ff
        } else if l.contains("none") || l.contains("zero") {
            0xf0f0f0ff
        } else {
            0xc6dbefff
        }
    }

    /// The nodes of a chain (one path through every node) from its start, or `None` when
    /// the graph is not one path.
    fn chain_order(graph: &ArchGraph) -> Option<Vec<usize>> {
        let n = graph.labels.len();
        let mut next = vec![None; n];
        let mut has_pred = vec![false; n];
        for &(a, b) in &graph.edges {
            next[a] = Some(b);
            has_pred[b] = true;
        }
        let mut at = (0..n).find(|&i| !has_pred[i])?;
        let mut order = vec![at];
        while let Some(b) = next[at] {
            if order.len() >= n {
                return None;
            }
            order.push(b);
            at = b;
        }
        (order.len() == n).then_some(order)
    }

    /// A chain as a row of blocks joined by arrows, wrapped after `PER_ROW` blocks (a long
    /// chain stays readable at page width).
    fn row_of_blocks(order: &[usize], graph: &ArchGraph) -> String {
        const PER_ROW: usize = 6;
        const W: f64 = 150.0;
        const H: f64 = 34.0;
        const GAP: f64 = 28.0;
        const ROW: f64 = 64.0;
        let rows = order.len().div_ceil(PER_ROW);
        let width = PER_ROW.min(order.len()) as f64 * (W + GAP) + GAP;
        let height = rows as f64 * ROW + 16.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"13\">\n<defs><marker id=\"arrow\" markerWidth=\"8\" markerHeight=\"6\" refX=\"8\" refY=\"3\" orient=\"auto\"><polygon points=\"0 0, 8 3, 0 6\" fill=\"#333\"/></marker></defs>\n"
        );
        let pos = |k: usize| {
            let (r, c) = (k / PER_ROW, k % PER_ROW);
            (GAP + c as f64 * (W + GAP), 16.0 + r as f64 * ROW)
        };
        for (k, &node) in order.iter().enumerate() {
            let (x, y) = pos(k);
            let label = super::escape(&graph.labels[node]);
            let fill = format!("#{:06x}", fill(&graph.labels[node]) >> 8);
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"6\" fill=\"{fill}\" stroke=\"#333\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" dominant-baseline=\"middle\">{label}</text>\n",
                x + W / 2.0,
                y + H / 2.0
            ));
            if k + 1 < order.len() {
                let (nx, ny) = pos(k + 1);
                let path = if ny == y {
                    format!("M {} {} L {} {}", x + W, y + H / 2.0, nx, ny + H / 2.0)
                } else {
                    // Down to the next row's first block.
                    let mid = y + H + (ROW - H) / 2.0;
                    format!(
                        "M {} {} L {} {mid} L {} {mid} L {} {}",
                        x + W / 2.0,
                        y + H,
                        x + W / 2.0,
                        nx + W / 2.0,
                        nx + W / 2.0,
                        ny
                    )
                };
                svg.push_str(&format!(
                    "<path d=\"{path}\" fill=\"none\" stroke=\"#333\" marker-end=\"url(#arrow)\"/>\n"
                ));
            }
        }
        svg.push_str("</svg>\n");
        svg
    }

    pub(super) fn draw(graph: &ArchGraph) -> Result<String, String> {
        let n = graph.labels.len();
        if n == 0 {
            return Err("the graph has no node".into());
        }
        if let Some(&(a, b)) = graph.edges.iter().find(|&&(a, b)| a >= n || b >= n) {
            return Err(format!("edge ({a}, {b}) names a node beyond the {n} nodes"));
        }
        let mut fan_in = vec![0usize; n];
        let mut fan_out = vec![0usize; n];
        for &(a, b) in &graph.edges {
            fan_out[a] += 1;
            fan_in[b] += 1;
        }
        let chain = fan_in.iter().chain(&fan_out).all(|&d| d <= 1);
        if chain && let Some(order) = chain_order(graph) {
            return Ok(row_of_blocks(&order, graph));
        }
        let orientation = Orientation::TopToBottom;
        let mut vg = VisualGraph::new(orientation);
        let handles: Vec<_> = graph
            .labels
            .iter()
            .map(|label| {
                let width = (label.chars().count() as f64 * 8.5 + 24.0).max(60.0);
                let look = StyleAttr::new(
                    Color::new(0x333333ff),
                    1,
                    Some(Color::new(fill(label))),
                    6,
                    14,
                );
                let size = Point::new(width, 36.0);
                vg.add_node(Element::create(
                    ShapeKind::new_box(label),
                    look,
                    orientation,
                    size,
                ))
            })
            .collect();
        for &(a, b) in &graph.edges {
            vg.add_edge(Arrow::simple(""), handles[a], handles[b]);
        }
        let mut svg = SVGWriter::new();
        // The layout code asserts its invariants; a failure there is reported, not a crash of
        // the caller.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            vg.do_it(false, false, false, &mut svg);
            svg.finalize()
        }))
        .map_err(|_| "the graph layout failed".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nas_space::nb201::{Nb201Arch, Nb201Space};
    use nas_space::spos::SposSpace;
    use nas_space::{SearchSpace, darts::DartsSpace};
    use rand::{SeedableRng, rngs::ChaCha8Rng};

    #[test]
    fn the_pareto_front_keeps_points_no_other_point_beats() {
        let points = [
            (3.0, 90.0),
            (1.0, 80.0),
            (2.0, 85.0),
            (2.5, 84.0),
            (4.0, 89.0),
        ];
        assert_eq!(pareto_front(&points), vec![1, 2, 0]);
        assert_eq!(pareto_front(&[(1.0, f64::NAN), (2.0, 1.0)]), vec![1]);
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn figure_names_must_be_plain_svg_files() {
        let mut r = Report::new("t");
        for bad in ["../x.svg", "a/b.svg", "x.png", ".svg"] {
            assert!(matches!(
                r.curve(bad, "c", "x", "y", &[1.0]),
                Err(ReportError::FileName(_))
            ));
        }
        assert!(matches!(
            r.curve("ok.svg", "c", "x", "y", &[f64::NAN]),
            Err(ReportError::Draw { .. })
        ));
    }

    #[test]
    fn diagrams_of_cells_and_chains_are_svg_with_every_operation() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let nb201 = Nb201Space::default();
        let darts = DartsSpace::default();
        let spos = SposSpace::default();
        let graphs = [
            nb201.graph(&nb201.sample(&mut rng)).unwrap(),
            darts.graph(&darts.sample(&mut rng)).unwrap(),
            spos.graph(&spos.sample(&mut rng)).unwrap(),
        ];
        for g in graphs {
            let svg = diagram::draw(&g).unwrap();
            assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
            for label in &g.labels {
                assert!(svg.contains(label.as_str()), "{label} missing");
            }
        }
        let bad = ArchGraph {
            labels: vec!["a".into()],
            edges: vec![(0, 3)],
        };
        assert!(diagram::draw(&bad).is_err());
    }

    #[test]
    fn html_escapes_text_and_links_every_figure() {
        let mut r = Report::new("a <b> & c");
        r.paragraph("x < y")
            .curve("c.svg", "cap \"q\"", "x", "y", &[1.0, 2.0])
            .unwrap()
            .table(&["h"], vec![vec!["<td>".into(), "extra".into()]]);
        let html = r.html();
        assert!(html.contains("<title>a &lt;b&gt; &amp; c</title>"));
        assert!(html.contains("<p>x &lt; y</p>"));
        assert!(html.contains("<img src=\"c.svg\" alt=\"cap &quot;q&quot;\">"));
        assert!(html.contains("<td>&lt;td&gt;</td><td>extra</td>"));
        assert_eq!(r.figures(), vec!["c.svg"]);
        let _ = Nb201Arch::new([nas_space::nb201::Nb201Op::None; 6]);
    }
}
