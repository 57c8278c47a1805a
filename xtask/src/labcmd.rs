//! `cargo xtask lab up SCENARIO | down [SCENARIO] | status`: a standing lab for running the
//! example configs by hand (the `vtep_lab::scenario` module does the work; see docs/lab.md).

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;
use vtep_lab::scenario::{self, Scenario};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Build the hosts of SCENARIO (s1..s5) as network namespaces lab-SCENARIO-a, -b, ... with
    /// the underlay the example configs expect (and for s5 an etcd on 127.0.0.1:23790), leave
    /// them up, and print the commands to run the examples by hand.
    Up {
        #[arg(value_parser = parse_scenario)]
        scenario: Scenario,
    },
    /// Stop the vteps running in a lab's namespaces and remove what `lab up` made: SCENARIO's
    /// lab, or every lab that is up.
    Down {
        #[arg(value_parser = parse_scenario)]
        scenario: Option<Scenario>,
    },
    /// Show the labs that are up, and the vtep instances in them.
    Status,
}

fn parse_scenario(text: &str) -> Result<Scenario, String> {
    Scenario::parse(text).map_err(|e| e.to_string())
}

/// Runs `command`; `vtep` is the binary the printed commands use (built by the caller for
/// `up`, recorded by `up` for `down`).
pub fn run(command: LabCommand, root: &Path, vtep: &Path) -> Result<()> {
    let dir = Path::new(scenario::STATE_DIR);
    match command {
        LabCommand::Up { scenario } => {
            let up = scenario::up(scenario, dir, root, vtep)?;
            print!("{}", up.render());
            Ok(())
        }
        LabCommand::Down { scenario } => scenario::down(scenario, dir, &mut |line| {
            println!("{line}");
        }),
        LabCommand::Status => {
            print!("{}", scenario::status(dir)?);
            Ok(())
        }
    }
}
