//! Distillers turn judged trajectories into memory items: [`LlmDistiller`] with the paper's
//! success, failure and (MaTTS) contrastive prompts, and [`ExtractiveDistiller`], which needs
//! no LLM and builds items from the trajectory's own text.

use std::collections::HashSet;

use async_trait::async_trait;
use serde_json::Value;

use crate::judge::{RuleJudge, render_trajectory};
use crate::llm::{ChatClient, Message, extract_json};
use crate::{Error, ItemDraft, ItemKind, Outcome, Result, Trajectory, Verdict};

/// Most items distilled from one trajectory by default (the paper's limit).
pub const DEFAULT_MAX_ITEMS: usize = 3;
/// Most items distilled from one contrastive (MaTTS) group by default.
pub const DEFAULT_MAX_CONTRASTIVE_ITEMS: usize = 5;

/// Turns judged trajectories into memory items.
///
/// Used as `Arc<dyn Distiller>`.
#[async_trait]
pub trait Distiller: Send + Sync + std::fmt::Debug {
    /// A short name stored with every item (`extractive`, `llm`).
    fn name(&self) -> &str;

    /// Items from one trajectory and its verdict: strategies from successes, pitfalls from
    /// failures.
    ///
    /// # Errors
    /// Implementation specific (LLM errors for [`LlmDistiller`]).
    async fn distill(&self, trajectory: &Trajectory, verdict: &Verdict) -> Result<Vec<ItemDraft>>;

    /// Items from several trajectories of one task, by contrasting the successful ones with
    /// the failed ones (MaTTS, the paper's parallel scaling).
    ///
    /// # Errors
    /// Implementation specific.
    async fn distill_contrastive(
        &self,
        task: &str,
        runs: &[(Trajectory, Verdict)],
    ) -> Result<Vec<ItemDraft>>;
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
    }
}

fn norm(action: &str) -> String {
    action
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Builds items from the trajectory's own text, no LLM: the loop works offline.
///
/// - success → a **strategy**: the task, and the sequence of actions that achieved it with
///   the answer; plus, for each step that failed on the way (error marker) and the step that
///   got past it, a recovery strategy (up to the item limit);
/// - failure → one **pitfall**: the failing step (the first whose observation shows an error
///   marker of its [`RuleJudge`], else the last), its action and observation, the judge's
///   reasons and the steps that led there;
/// - contrastive (MaTTS) → a strategy from the shortest success naming the actions every
///   success took and no failure did, and a pitfall listing the actions only failures took,
///   with what they produced.
#[derive(Clone, Debug)]
pub struct ExtractiveDistiller {
    markers: RuleJudge,
    max_chars: usize,
    max_items: usize,
}

impl Default for ExtractiveDistiller {
    fn default() -> Self {
        ExtractiveDistiller {
            markers: RuleJudge::new(),
            max_chars: 800,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

impl ExtractiveDistiller {
    /// A distiller with the defaults below.
    pub fn new() -> Self {
        Self::default()
    }
    /// The rule judge whose error markers locate the failing step. Defaults to
    /// [`RuleJudge::new`].
    pub fn markers(&mut self, judge: RuleJudge) -> &mut Self {
        self.markers = judge;
        self
    }
    /// Longest content, in characters. Defaults to 800.
    pub fn max_chars(&mut self, n: usize) -> &mut Self {
        self.max_chars = n.max(40);
        self
    }
    /// Most items per call. Defaults to 3.
    pub fn max_items(&mut self, n: usize) -> &mut Self {
        self.max_items = n;
        self
    }

    fn strategy(&self, t: &Trajectory, description: String, extra: &str) -> ItemDraft {
        let mut content = String::new();
        for (i, s) in t.steps.iter().enumerate() {
            content.push_str(&format!("{}. {}\n", i + 1, clip(&s.action, 160)));
        }
        if let Some(a) = t.answer.as_deref().filter(|a| !a.trim().is_empty()) {
            content.push_str(&format!("Answer: {}\n", clip(a, 200)));
        }
        content.push_str(extra);
        ItemDraft {
            title: format!("How to: {}", clip(&t.task, 100)),
            description,
            content: clip(&content, self.max_chars),
            kind: ItemKind::Strategy,
        }
    }

    /// Steps of a successful trajectory that failed (error marker) and the step that got the
    /// agent past them: failures inside successes are lessons too.
    fn recoveries(&self, t: &Trajectory) -> Vec<ItemDraft> {
        let mut out = Vec::new();
        for (i, pair) in t.steps.windows(2).enumerate() {
            let (failed, next) = (&pair[0], &pair[1]);
            if self.markers.marker_in(&failed.observation).is_none()
                || self.markers.marker_in(&next.observation).is_some()
            {
                continue;
            }
            let content = format!(
                "Step {} `{}` produced: {}\nWhat worked next: `{}`{}\n",
                i + 1,
                clip(&failed.action, 160),
                clip(&failed.observation, 240),
                clip(&next.action, 160),
                if next.observation.trim().is_empty() {
                    String::new()
                } else {
                    format!(" → {}", clip(&next.observation, 160))
                }
            );
            out.push(ItemDraft {
                title: format!("Recover from a failed `{}`", clip(&failed.action, 80)),
                description: format!(
                    "How the agent got past this failure while achieving: {}",
                    clip(&t.task, 160)
                ),
                content: clip(&content, self.max_chars),
                kind: ItemKind::Strategy,
            });
        }
        out
    }

    fn pitfall(&self, t: &Trajectory, v: &Verdict) -> ItemDraft {
        let at = self
            .markers
            .failing_step(t)
            .or_else(|| t.steps.len().checked_sub(1));
        let mut content = String::new();
        let title = match at {
            Some(i) => {
                let s = &t.steps[i];
                content.push_str(&format!(
                    "Action `{}` produced: {}\n",
                    clip(&s.action, 200),
                    clip(&s.observation, 300)
                ));
                if i > 0 {
                    let before: Vec<String> =
                        t.steps[..i].iter().map(|s| clip(&s.action, 80)).collect();
                    content.push_str(&format!("Steps before it: {}\n", before.join("; ")));
                }
                format!("Pitfall: {}", clip(&s.action, 100))
            }
            None => {
                content.push_str("The agent took no action.\n");
                format!("Pitfall: no action taken for {}", clip(&t.task, 80))
            }
        };
        // An explicit verdict's reasons only say who decided; a rule's or an LLM's say why.
        if !v.reasons.is_empty() && v.judge != "explicit" {
            content.push_str(&format!("Why it failed: {}\n", clip(&v.reasons, 300)));
        }
        ItemDraft {
            title,
            description: format!("This failed while attempting: {}", clip(&t.task, 160)),
            content: clip(&content, self.max_chars),
            kind: ItemKind::Pitfall,
        }
    }
}

#[async_trait]
impl Distiller for ExtractiveDistiller {
    fn name(&self) -> &str {
        "extractive"
    }

    async fn distill(&self, t: &Trajectory, v: &Verdict) -> Result<Vec<ItemDraft>> {
        let mut items = match v.outcome {
            Outcome::Success => vec![self.strategy(
                t,
                format!(
                    "{} step(s) that achieved: {}",
                    t.steps.len(),
                    clip(&t.task, 160)
                ),
                "",
            )],
            Outcome::Failure => vec![self.pitfall(t, v)],
        };
        if v.outcome == Outcome::Success {
            items.extend(self.recoveries(t));
        }
        items.truncate(self.max_items);
        Ok(items)
    }

    async fn distill_contrastive(
        &self,
        task: &str,
        runs: &[(Trajectory, Verdict)],
    ) -> Result<Vec<ItemDraft>> {
        let (wins, losses): (Vec<_>, Vec<_>) = runs
            .iter()
            .partition(|(_, v)| v.outcome == Outcome::Success);
        let actions = |t: &Trajectory| -> HashSet<String> {
            t.steps.iter().map(|s| norm(&s.action)).collect()
        };
        let win_sets: Vec<HashSet<String>> = wins.iter().map(|(t, _)| actions(t)).collect();
        let loss_sets: Vec<HashSet<String>> = losses.iter().map(|(t, _)| actions(t)).collect();
        let in_any = |sets: &[HashSet<String>], a: &str| sets.iter().any(|s| s.contains(a));
        let mut items = Vec::new();

        if let Some((best, _)) = wins.iter().min_by_key(|(t, _)| t.steps.len()) {
            // Actions every success took and no failure did: what made the difference.
            let mut decisive: Vec<String> = Vec::new();
            for s in &best.steps {
                let a = norm(&s.action);
                if win_sets.iter().all(|w| w.contains(&a))
                    && !in_any(&loss_sets, &a)
                    && !decisive.iter().any(|d| norm(d) == a)
                {
                    decisive.push(clip(&s.action, 120));
                }
            }
            let extra = if decisive.is_empty() || losses.is_empty() {
                String::new()
            } else {
                format!(
                    "Every successful attempt did, and no failed one: {}\n",
                    decisive.join("; ")
                )
            };
            let description = format!(
                "Shortest of {} successful attempts out of {} at: {}",
                wins.len(),
                runs.len(),
                clip(task, 160)
            );
            let mut item = self.strategy(best, description, &extra);
            item.title = format!("How to: {}", clip(task, 100));
            items.push(item);
        }

        if !losses.is_empty() {
            if wins.is_empty() {
                // Nothing to contrast with: one pitfall per distinct failing action.
                let mut seen = HashSet::new();
                for (t, v) in &losses {
                    let p = self.pitfall(t, v);
                    if seen.insert(norm(&p.title)) {
                        items.push(p);
                    }
                }
            } else {
                // Actions only failures took, with what they produced.
                let mut content = String::new();
                let mut first = None;
                let mut seen = HashSet::new();
                for (t, _) in &losses {
                    for s in &t.steps {
                        let a = norm(&s.action);
                        if !in_any(&win_sets, &a) && seen.insert(a) {
                            first.get_or_insert_with(|| clip(&s.action, 100));
                            content.push_str(&format!(
                                "- `{}` produced: {}\n",
                                clip(&s.action, 160),
                                clip(&s.observation, 200)
                            ));
                        }
                    }
                }
                let title = match first {
                    Some(a) => format!("Pitfall: {a}"),
                    None => {
                        // Same actions, different outcomes: point at the judge's reasons.
                        for (_, v) in &losses {
                            content.push_str(&format!("- {}\n", clip(&v.reasons, 200)));
                        }
                        format!("Pitfall: unreliable approach to {}", clip(task, 80))
                    }
                };
                items.push(ItemDraft {
                    title,
                    description: format!(
                        "Taken only in the {} failed attempts (of {}) at: {}",
                        losses.len(),
                        runs.len(),
                        clip(task, 160)
                    ),
                    content: clip(&content, self.max_chars),
                    kind: ItemKind::Pitfall,
                });
            }
        }
        items.truncate(self.max_items);
        Ok(items)
    }
}

/// The paper's extraction prompt for successful trajectories (its Appendix A.1, generalized
/// from web navigation), asking for JSON instead of Markdown so the output parses reliably.
pub const SUCCESS_PROMPT: &str = "\
You are an expert in AI agents. You will be given a user task and the corresponding trajectory \
that represents how an agent successfully accomplished the task.

## Guidelines
You need to extract and summarize useful insights in the format of memory items based on the \
agent's successful trajectory. The goal of summarized memory items is to be helpful and \
generalizable for future similar tasks.

## Important notes
- You must first think why the trajectory is successful, and then summarize the insights.
- You can extract at most 3 memory items from the trajectory.
- You must not repeat similar or overlapping items.
- Do not mention specific websites, queries, or string contents, but rather focus on the \
generalizable insights.

## Output format
Answer with a JSON array only, one object per memory item:
[{\"title\": \"<the title of the memory item>\", \"description\": \"<one sentence summary of \
the memory item>\", \"content\": \"<1-3 sentences describing the insights learned to \
successfully accomplish the task>\"}]";

/// The paper's extraction prompt for failed trajectories.
pub const FAILURE_PROMPT: &str = "\
You are an expert in AI agents. You will be given a user task and the corresponding trajectory \
that represents how an agent attempted to resolve the task but failed.

## Guidelines
You need to extract and summarize useful insights in the format of memory items based on the \
agent's failed trajectory. The goal of summarized memory items is to be helpful and \
generalizable for future similar tasks.

## Important notes
- You must first reflect and think why the trajectory failed, and then summarize what lessons \
you have learned or strategies to prevent the failure in the future.
- You can extract at most 3 memory items from the trajectory.
- You must not repeat similar or overlapping items.
- Do not mention specific websites, queries, or string contents, but rather focus on the \
generalizable insights.

## Output format
Answer with a JSON array only, one object per memory item:
[{\"title\": \"<the title of the memory item>\", \"description\": \"<one sentence summary of \
the memory item>\", \"content\": \"<1-3 sentences describing the lessons learned to avoid the \
failure>\"}]";

/// The paper's MaTTS (parallel scaling) self-contrast prompt.
pub const CONTRASTIVE_PROMPT: &str = "\
You are an expert in AI agents. You will be given a user task and multiple trajectories \
showing how an agent attempted the task. Some trajectories may be successful, and others may \
have failed.

## Guidelines
Your goal is to compare and contrast these trajectories to identify the most useful and \
generalizable strategies as memory items. Use self-contrast reasoning:
- Identify patterns and strategies that consistently led to success.
- Identify mistakes or inefficiencies from failed trajectories and formulate preventative \
strategies.
- Prefer strategies that generalize beyond specific pages or exact wording.

## Important notes
- Think first: why did some trajectories succeed while others failed?
- You can extract at most 5 memory items from all trajectories combined.
- Do not repeat similar or overlapping items.
- Do not mention specific websites, queries, or string contents; focus on generalizable \
behaviors and reasoning patterns.

## Output format
Answer with a JSON array only, one object per memory item:
[{\"kind\": \"strategy\" or \"pitfall\", \"title\": \"<the title>\", \"description\": \"<one \
sentence summary>\", \"content\": \"<1-5 sentences describing the insight>\"}]";

/// Distills with an LLM over an OpenAI-compatible chat API, with the paper's separate success
/// and failure prompts and its contrastive prompt for MaTTS.
///
/// The answer may be a JSON array (as the prompts ask), wrapped in prose or code fences, an
/// object holding an `items` array, or the paper's Markdown (`# Memory Item`, `## Title`,
/// `## Description`, `## Content`). Anything else, or an item lacking a non-empty string
/// `title`, `description` or `content`, is [`Error::MalformedLlmOutput`]. Items beyond the
/// limit are dropped.
#[derive(Clone, Debug)]
pub struct LlmDistiller {
    client: ChatClient,
    max_items: usize,
    max_contrastive_items: usize,
}

impl LlmDistiller {
    /// A distiller asking `client`.
    pub fn new(client: ChatClient) -> Self {
        LlmDistiller {
            client,
            max_items: DEFAULT_MAX_ITEMS,
            max_contrastive_items: DEFAULT_MAX_CONTRASTIVE_ITEMS,
        }
    }
    /// Most items kept per trajectory. Defaults to 3 (the paper's limit).
    pub fn max_items(&mut self, n: usize) -> &mut Self {
        self.max_items = n;
        self
    }
    /// Most items kept per contrastive group. Defaults to 5.
    pub fn max_contrastive_items(&mut self, n: usize) -> &mut Self {
        self.max_contrastive_items = n;
        self
    }
}

#[async_trait]
impl Distiller for LlmDistiller {
    fn name(&self) -> &str {
        "llm"
    }

    async fn distill(&self, t: &Trajectory, v: &Verdict) -> Result<Vec<ItemDraft>> {
        let (prompt, kind) = match v.outcome {
            Outcome::Success => (SUCCESS_PROMPT, ItemKind::Strategy),
            Outcome::Failure => (FAILURE_PROMPT, ItemKind::Pitfall),
        };
        let mut user = render_trajectory(t);
        if !v.reasons.is_empty() {
            user.push_str(&format!("\nJudge's assessment: {}\n", v.reasons));
        }
        let answer = self
            .client
            .complete(&[Message::system(prompt), Message::user(user)])
            .await?;
        parse_items(&answer, kind, self.max_items)
    }

    async fn distill_contrastive(
        &self,
        task: &str,
        runs: &[(Trajectory, Verdict)],
    ) -> Result<Vec<ItemDraft>> {
        let mut user = format!("Task: {task}\n");
        for (i, (t, v)) in runs.iter().enumerate() {
            user.push_str(&format!(
                "\n## Trajectory {} ({})\n{}",
                i + 1,
                v.outcome.as_str(),
                render_trajectory(t)
            ));
        }
        let answer = self
            .client
            .complete(&[Message::system(CONTRASTIVE_PROMPT), Message::user(user)])
            .await?;
        parse_items(&answer, ItemKind::Insight, self.max_contrastive_items)
    }
}

/// Parses an LLM's memory items (JSON array, `{"items": [...]}` or the paper's Markdown).
/// Items of no stated `kind` get `default_kind`; at most `max` are kept.
pub(crate) fn parse_items(
    text: &str,
    default_kind: ItemKind,
    max: usize,
) -> Result<Vec<ItemDraft>> {
    let malformed = |reason: String| Error::MalformedLlmOutput {
        what: "distill",
        reason,
        excerpt: crate::error::excerpt(text),
    };
    let mut items = match extract_json(text) {
        Some(v) => {
            let list = match &v {
                Value::Array(a) => a.clone(),
                Value::Object(o) => match o.get("items").or_else(|| o.get("memory_items")) {
                    Some(Value::Array(a)) => a.clone(),
                    _ if o.contains_key("title") => vec![v.clone()],
                    _ => return Err(malformed("a JSON object without an `items` array".into())),
                },
                _ => {
                    return Err(malformed(
                        "JSON that is neither an array nor an object".into(),
                    ));
                }
            };
            let mut out = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let field = |k: &str| -> Result<String> {
                    item.get(k)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            malformed(format!("item {} lacks a non-empty string `{k}`", i + 1))
                        })
                };
                let kind = match item.get("kind").and_then(Value::as_str) {
                    None => default_kind,
                    Some(k) => serde_json::from_value(Value::String(k.to_lowercase()))
                        .map_err(|_| malformed(format!("item {} has unknown kind {k:?}", i + 1)))?,
                };
                out.push(ItemDraft {
                    title: field("title")?,
                    description: field("description")?,
                    content: field("content")?,
                    kind,
                });
            }
            out
        }
        None => parse_markdown(text, default_kind).map_err(malformed)?,
    };
    items.truncate(max);
    Ok(items)
}

/// The paper's Markdown output: `# Memory Item i` / `## Title` / `## Description` / `## Content`.
fn parse_markdown(text: &str, kind: ItemKind) -> std::result::Result<Vec<ItemDraft>, String> {
    let mut items = Vec::new();
    let mut cur: Option<[String; 3]> = None;
    let mut section: Option<usize> = None;
    let finish =
        |c: Option<[String; 3]>, items: &mut Vec<ItemDraft>| -> std::result::Result<(), String> {
            if let Some([t, d, c]) = c {
                let n = items.len() + 1;
                for (name, v) in [("title", &t), ("description", &d), ("content", &c)] {
                    if v.trim().is_empty() {
                        return Err(format!("memory item {n} has no {name}"));
                    }
                }
                items.push(ItemDraft {
                    title: t.trim().to_owned(),
                    description: d.trim().to_owned(),
                    content: c.trim().to_owned(),
                    kind,
                });
            }
            Ok(())
        };
    for line in text.lines() {
        let l = line.trim();
        let lower = l.to_lowercase();
        if lower.starts_with("# memory item") {
            finish(cur.take(), &mut items)?;
            cur = Some(Default::default());
            section = None;
        } else if let Some(h) = lower.strip_prefix("## ") {
            section = match h.trim() {
                "title" => Some(0),
                "description" => Some(1),
                "content" => Some(2),
                _ => None,
            };
        } else if let (Some(c), Some(s)) = (cur.as_mut(), section) {
            if !c[s].is_empty() {
                c[s].push('\n');
            }
            c[s].push_str(l);
        }
    }
    finish(cur.take(), &mut items)?;
    if items.is_empty() {
        return Err("neither JSON nor `# Memory Item` sections found".into());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_from_json_and_markdown() {
        let j = r#"Here: ```json
[{"title": "A", "description": "d", "content": "c"},
 {"title": "B", "description": "d", "content": "c", "kind": "pitfall"},
 {"title": "C", "description": "d", "content": "c"},
 {"title": "D", "description": "d", "content": "c"}]```"#;
        let items = parse_items(j, ItemKind::Strategy, 3).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].kind, ItemKind::Pitfall);
        let md = "# Memory Item 1\n## Title\nCheck first\n## Description\nOne line.\n## Content\nDo X.\nThen Y.\n";
        let items = parse_items(md, ItemKind::Pitfall, 3).unwrap();
        assert_eq!(items[0].content, "Do X.\nThen Y.");
        for bad in [
            r#"[{"title": "A", "description": "d"}]"#,
            r#"[{"title": "A", "description": "d", "content": 3}]"#,
            r#"{"result": "nothing"}"#,
            "just prose",
            "# Memory Item 1\n## Title\nX\n",
        ] {
            assert!(
                matches!(
                    parse_items(bad, ItemKind::Strategy, 3),
                    Err(Error::MalformedLlmOutput { .. })
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn extractive_contrast() {
        let v = |o| Verdict::new(o, "", "explicit");
        let mut ok = Trajectory::new("build the crate");
        ok.step("cargo update", "ok")
            .step("cargo build", "Finished")
            .answer("built");
        let mut bad = Trajectory::new("build the crate");
        bad.step("cargo build --offline", "error: no matching package")
            .step("give up", "");
        let runs = vec![(ok, v(Outcome::Success)), (bad, v(Outcome::Failure))];
        let items = ExtractiveDistiller::new()
            .distill_contrastive("build the crate", &runs)
            .await
            .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].kind, ItemKind::Strategy);
        assert!(
            items[0]
                .content
                .contains("no failed one: cargo update; cargo build")
        );
        assert_eq!(items[1].kind, ItemKind::Pitfall);
        assert!(items[1].content.contains("cargo build --offline"));
        assert_eq!(items[1].title, "Pitfall: cargo build --offline");
    }

    #[test]
    fn clip_marks_cuts() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip(" ab ", 3), "ab");
    }
}
