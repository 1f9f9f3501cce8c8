//! Where the cells of a NAS-Bench-201 search rank in the table: reads a search's JSON-lines
//! journal (`runs/quickstart/trials.jsonl`, or any journal of NAS-Bench-201 cells) and prints
//! every distinct cell it scored, best score first, with its 200-epoch CIFAR-10 accuracy and
//! rank in the NAS-Bench-201 table. It shows whether a search that missed the best cells never
//! proposed them (exploration) or proposed them and scored them too low (the proxy).
//!
//! ```text
//! cargo run --release --example journal_ranks -- runs/quickstart/trials.jsonl
//! cargo run --release --example journal_ranks -- runs/quickstart/trials.jsonl --top 156
//! ```

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nas::estimate::tabular::Nb201Table;
use nas::space::nb201::Nb201Arch;
use nas::strategy::search::read_journal;

#[derive(Parser, Debug)]
#[command(about = "Table ranks of the NAS-Bench-201 cells in a search's journal")]
struct Args {
    /// The journal (JSON lines, one trial each).
    journal: PathBuf,
    /// Table rank that counts as a top cell (156: the top 1 % of 15,625).
    #[arg(long, default_value_t = 156)]
    top: usize,
    /// Print only the cells with a table rank up to this (default: every cell).
    #[arg(long)]
    show_rank: Option<usize>,
    /// NAS-Bench-201 table (default: $NAS_NB201_CSV, then
    /// ../shared/data/nb201/nats_bench_tss_200ep.csv).
    #[arg(long)]
    nb201: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let records = read_journal::<Nb201Arch>(&args.journal).map_err(|e| e.to_string())?;
    let table =
        Nb201Table::open(common::nb201_path(args.nb201.clone())).map_err(|e| e.to_string())?;
    // Each distinct cell's best score (a search may score a cell more than once).
    let mut best: HashMap<String, (f64, Nb201Arch, usize)> = HashMap::new();
    let mut complete = 0;
    for r in &records {
        let Some(m) = r.outcome.complete() else {
            continue;
        };
        complete += 1;
        let entry = best
            .entry(r.arch.to_string())
            .or_insert((f64::NEG_INFINITY, r.arch, 0));
        entry.0 = entry.0.max(m.objective);
        entry.2 += 1;
    }
    let mut cells: Vec<(f64, Nb201Arch, usize)> = best.into_values().collect();
    cells.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| a.1.to_string().cmp(&b.1.to_string()))
    });
    println!(
        "{}: {} trials, {complete} complete, {} distinct cells",
        args.journal.display(),
        records.len(),
        cells.len()
    );
    println!("position     score  scored  CIFAR-10  table rank  cell");
    let mut top = Vec::new();
    let mut best_rank: Option<(usize, usize)> = None;
    for (i, (score, arch, times)) in cells.iter().enumerate() {
        let Some((acc, rank)) = common::cifar10_rank(&table, arch) else {
            println!(
                "{:>8}  {score:>8.4}  {times:>6}  not in the table: {arch}",
                i + 1
            );
            continue;
        };
        if rank <= args.top {
            top.push((i + 1, rank));
        }
        if best_rank.is_none_or(|(_, r)| rank < r) {
            best_rank = Some((i + 1, rank));
        }
        if args.show_rank.is_none_or(|r| rank <= r) {
            println!(
                "{:>8}  {score:>8.4}  {times:>6}  {acc:7.2}%  {rank:>10}  {arch}",
                i + 1
            );
        }
    }
    if let Some((position, rank)) = best_rank {
        println!(
            "best cell in the table: rank {rank}, scored at position {position} of {}",
            cells.len()
        );
    }
    let listed: Vec<String> = top
        .iter()
        .map(|(p, r)| format!("rank {r} at position {p}"))
        .collect();
    println!(
        "cells in the table's top {}: {}{}",
        args.top,
        top.len(),
        if listed.is_empty() {
            String::new()
        } else {
            format!(" ({})", listed.join(", "))
        }
    );
    Ok(())
}
