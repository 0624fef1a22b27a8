//! The command line: `smsdesk` (or `smsdesk serve`) runs the server; `smsdesk agent …`
//! manages agents in the configured database.

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use crate::auth::PasswordHasher;
use crate::config::Settings;
use crate::domain::{Email, NewAgent, PhoneNumber};
use crate::model::Role;
use crate::startup::connect_store;

#[derive(Parser)]
#[command(
    name = "smsdesk",
    version,
    about = "A real-time SMS inbox for CRM agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Create an agent; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// A Twilio number of the agent (repeat for several).
        #[arg(long = "number", required = true)]
        numbers: Vec<String>,
        /// Make the agent an admin, who manages the other agents in the page.
        #[arg(long)]
        admin: bool,
    },
    /// List agents and their numbers.
    List,
    /// Add or remove an agent's numbers.
    Numbers {
        email: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

fn print_agent(a: &crate::model::Agent) {
    println!(
        "{}\t{}\t{}\t{}\t{}",
        a.id,
        a.email,
        a.name,
        a.role.as_str(),
        a.numbers.join(",")
    );
}

pub async fn agent(settings: Settings, command: AgentCommand) -> anyhow::Result<()> {
    let store = connect_store(&settings.database_url).await?;
    match command {
        AgentCommand::Add {
            email,
            name,
            numbers,
            admin,
        } => {
            let password = read_password()?;
            let new = NewAgent::parse(&email, &name, &password, &numbers)?;
            // One hash at a time, off the async runtime, as the server hashes.
            let hash = PasswordHasher::new(1, 0).hash(password).await?;
            let role = if admin { Role::Admin } else { Role::Agent };
            let agent = store
                .create_agent_as(&new, &hash, role)
                .await?
                .ok_or_else(|| anyhow::anyhow!("an agent with the email {} exists", new.email))?;
            println!(
                "created {} {} <{}> with {}",
                agent.role.as_str(),
                agent.name,
                agent.email,
                agent.numbers.join(", ")
            );
        }
        AgentCommand::List => {
            let agents = store.list_agents().await?;
            if agents.is_empty() {
                println!("no agents yet: smsdesk agent add --email … --name … --number +1…");
            }
            for a in &agents {
                print_agent(a);
            }
        }
        AgentCommand::Numbers { email, add, remove } => {
            let add = PhoneNumber::parse_all("--add", &add)?;
            let remove = PhoneNumber::parse_all("--remove", &remove)?;
            let (agent, _) = store
                .agent_by_email(&Email::normalize(&email))
                .await?
                .ok_or_else(|| anyhow::anyhow!("no agent with the email {email}"))?;
            let agent = store.change_numbers(agent.id, &add, &remove).await?;
            print_agent(&agent);
        }
    }
    Ok(())
}
