//! A scripted agent loop that gets better with memory.
//!
//! `cargo run --release --example agent_loop`
//!
//! The "world" is a family of deployment tasks. Deploying fails unless the agent first
//! exports `DATABASE_URL` from the vault, and a rollback needs `--force` when a migration ran.
//! The scripted agent knows neither trick. Each episode it:
//!
//! 1. recalls the memory items most useful for the task (`find_similar_patterns`),
//! 2. acts: follows a recalled strategy if one names a fix, otherwise the naive plan,
//! 3. on failure explores (finds the fix on its second attempt),
//! 4. learns from the failed attempt (a pitfall) and from the success (a strategy),
//! 5. gives feedback on the items it used: success if it succeeded first time.
//!
//! The printed table shows the attempts per task falling from 2 to 1 once the family's
//! lesson is in memory, and the confidence of the lesson rising with feedback.

use std::collections::HashSet;

use reasonbank::AgentMemory;
use reasonbank::reasoning::{Feedback, Outcome, Trajectory};

/// The world's hidden rules: which action must come before the main one.
fn prerequisite(task: &str) -> (&'static str, &'static str) {
    if task.starts_with("roll back") {
        (
            "add --force because a migration already ran",
            "run rollback.sh",
        )
    } else {
        ("export DATABASE_URL from the vault", "run deploy.sh")
    }
}

/// Runs `plan` in the world and returns the steps and whether the task succeeded.
fn act(task: &str, plan: &[&str]) -> (Vec<(String, String)>, bool) {
    let (fix, main) = prerequisite(task);
    let mut done = HashSet::new();
    let mut steps = Vec::new();
    for &action in plan {
        let observation = if action == main {
            if done.contains(fix) {
                "done: all checks green".to_owned()
            } else if main == "run deploy.sh" {
                "error: missing env var DATABASE_URL".to_owned()
            } else {
                "error: refusing to roll back past a migration without --force".to_owned()
            }
        } else {
            "ok".to_owned()
        };
        let failed = observation.starts_with("error");
        steps.push((action.to_owned(), observation));
        done.insert(action);
        if failed {
            return (steps, false);
        }
    }
    (steps, true)
}

/// The `1. action` lines of a distilled strategy, in order.
fn numbered_steps(content: &str) -> Vec<String> {
    content
        .lines()
        .filter_map(|l| {
            let (n, rest) = l.trim().split_once(". ")?;
            n.parse::<u32>().ok().map(|_| rest.trim().to_owned())
        })
        .collect()
}

fn trajectory(task: &str, steps: &[(String, String)], ok: bool) -> Trajectory {
    let mut t = Trajectory::new(task);
    for (a, o) in steps {
        t.step(a, o);
    }
    t.answer(if ok { "completed" } else { "gave up" })
        .outcome(if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        });
    t
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let memory = AgentMemory::builder(dir.path())
        .agent("deployer")
        .build()
        .await?;
    let tasks = [
        "deploy the billing service to staging",
        "deploy the search service to staging",
        "deploy the email worker to staging",
        "roll back the billing service on staging",
        "roll back the search service on staging",
        "deploy the billing service to production",
        "roll back the email worker on staging",
    ];
    println!(
        "{:<45} {:>8}  recalled lesson (confidence)",
        "task", "attempts"
    );
    let mut attempts_per_task = Vec::new();
    for task in tasks {
        // 1. Recall.
        let hints = memory.find_similar_patterns(task, 0.35, 3).await?;
        let (fix, main) = prerequisite(task);
        // 2. Act: replay the steps of a recalled strategy that ends in this task's main action
        //    (the agent knows only that action); otherwise the naive plan.
        let recalled = hints.iter().find_map(|h| {
            let steps = numbered_steps(&h.item.content);
            (steps.last().map(String::as_str) == Some(main)).then_some((h, steps))
        });
        let plan: Vec<&str> = match &recalled {
            Some((_, steps)) => steps.iter().map(String::as_str).collect(),
            None => vec![main],
        };
        let known = recalled.as_ref().map(|(h, _)| *h);
        let (steps, ok) = act(task, &plan);
        let mut attempts = 1;
        if !ok {
            // 3. Learn from the failure, then explore: the second attempt finds the fix.
            memory.learn(&trajectory(task, &steps, false)).await?;
            attempts += 1;
            let (steps, ok) = act(task, &[fix, main]);
            assert!(ok, "the exploring attempt always finds the fix");
            memory.learn(&trajectory(task, &steps, true)).await?;
        } else {
            memory.learn(&trajectory(task, &steps, true)).await?;
        }
        // 5. Feedback on the lesson that was used.
        let mut shown = String::from("-");
        if let Some(h) = known {
            let fb = if attempts == 1 {
                Feedback::Success
            } else {
                Feedback::Failure
            };
            let item = memory.feedback(h.item.id, fb).await?;
            shown = format!("{} ({:.2})", item.title, item.confidence);
        }
        println!("{task:<45} {attempts:>8}  {shown}");
        attempts_per_task.push(attempts);
    }
    // The first task of each family takes two attempts; with memory, every later one takes one.
    anyhow::ensure!(
        attempts_per_task == [2, 1, 1, 2, 1, 1, 1],
        "the agent did not improve as expected: {attempts_per_task:?}"
    );
    let stats = memory.stats().await?;
    println!(
        "\n{} records in {} (experiences and distilled strategies/pitfalls)",
        stats.records,
        memory.shard().path().display()
    );
    Ok(())
}
