//! Judges decide whether a trajectory succeeded: the caller's own outcome ([`ExplicitJudge`]),
//! rules over the trajectory's text ([`RuleJudge`]), or an LLM ([`LlmJudge`], the paper's
//! LLM-as-judge).

use std::sync::Arc;

use async_trait::async_trait;

use crate::llm::{ChatClient, Message};
use crate::{Error, Outcome, Result, Trajectory, Verdict};

/// Decides success or failure of a trajectory.
///
/// Used as `Arc<dyn Judge>`. A judge that cannot decide returns an error; it never invents a
/// verdict.
#[async_trait]
pub trait Judge: Send + Sync + std::fmt::Debug {
    /// The verdict on `trajectory`.
    ///
    /// # Errors
    /// Implementation specific; see each judge.
    async fn judge(&self, trajectory: &Trajectory) -> Result<Verdict>;
}

/// Takes the caller's outcome, or its reward against a threshold.
///
/// When the trajectory carries neither, it asks its fallback judge (if configured; the verdict
/// then names that judge) or fails with [`Error::NoOutcome`].
#[derive(Clone, Debug)]
pub struct ExplicitJudge {
    threshold: f32,
    fallback: Option<Arc<dyn Judge>>,
}

impl Default for ExplicitJudge {
    fn default() -> Self {
        ExplicitJudge {
            threshold: 0.5,
            fallback: None,
        }
    }
}

impl ExplicitJudge {
    /// A judge with reward threshold 0.5 and no fallback.
    pub fn new() -> Self {
        Self::default()
    }
    /// A reward at or above this is a success. Defaults to 0.5.
    pub fn threshold(&mut self, t: f32) -> &mut Self {
        self.threshold = t;
        self
    }
    /// The judge asked when a trajectory has no outcome and no reward. Defaults to none (an
    /// error).
    pub fn fallback(&mut self, judge: Arc<dyn Judge>) -> &mut Self {
        self.fallback = Some(judge);
        self
    }
}

#[async_trait]
impl Judge for ExplicitJudge {
    async fn judge(&self, t: &Trajectory) -> Result<Verdict> {
        if let Some(o) = t.outcome {
            return Ok(Verdict::new(o, "outcome given by the caller", "explicit"));
        }
        if let Some(r) = t.reward {
            let o = if r >= self.threshold {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            let reasons = format!("reward {r} against threshold {}", self.threshold);
            return Ok(Verdict::new(o, reasons, "explicit"));
        }
        match &self.fallback {
            Some(j) => j.judge(t).await,
            None => Err(Error::NoOutcome {
                reason: "it carries neither `outcome` nor `reward`, and no fallback judge is set"
                    .into(),
            }),
        }
    }
}

/// Error markers [`RuleJudge`] looks for in observations and the answer by default
/// (case-insensitive substrings).
pub const DEFAULT_ERROR_MARKERS: &[&str] = &[
    "error:",
    "error[",
    "exception",
    "traceback (most recent call last)",
    "panicked at",
    "command not found",
    "permission denied",
    "no such file or directory",
    "timed out",
    "segmentation fault",
    "fatal:",
];

/// Rule-based judge: a trajectory succeeds when it has a non-empty answer, its final
/// observation shows none of the error markers, and the answer contains every required
/// pattern. Offline and deterministic; reasons name the rule that fired.
///
/// Only the *last* step's observation is checked for markers by default: agents recover from
/// errors, and an error in step 2 of a trajectory that ends well is not a failure.
#[derive(Clone, Debug)]
pub struct RuleJudge {
    error_markers: Vec<String>,
    required_in_answer: Vec<String>,
    check_all_steps: bool,
}

impl Default for RuleJudge {
    fn default() -> Self {
        RuleJudge {
            error_markers: DEFAULT_ERROR_MARKERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            required_in_answer: Vec::new(),
            check_all_steps: false,
        }
    }
}

impl RuleJudge {
    /// A judge with the default rules.
    pub fn new() -> Self {
        Self::default()
    }
    /// Case-insensitive substrings that mark a failed observation. Defaults to
    /// [`DEFAULT_ERROR_MARKERS`].
    pub fn error_markers<I, S>(&mut self, markers: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.error_markers = markers
            .into_iter()
            .map(|m| m.into().to_lowercase())
            .collect();
        self
    }
    /// Case-insensitive substrings the answer must contain. Defaults to none.
    pub fn required_in_answer<I, S>(&mut self, patterns: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_in_answer = patterns
            .into_iter()
            .map(|m| m.into().to_lowercase())
            .collect();
        self
    }
    /// Check every step's observation for error markers, not just the last. Defaults to false.
    pub fn check_all_steps(&mut self, yes: bool) -> &mut Self {
        self.check_all_steps = yes;
        self
    }

    /// The first error marker found in `text`.
    pub fn marker_in(&self, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        self.error_markers
            .iter()
            .find(|m| !m.is_empty() && lower.contains(m.as_str()))
            .map(String::as_str)
    }

    /// Index of the first step whose observation shows an error marker.
    pub fn failing_step(&self, t: &Trajectory) -> Option<usize> {
        t.steps
            .iter()
            .position(|s| self.marker_in(&s.observation).is_some())
    }

    fn decide(&self, t: &Trajectory) -> (Outcome, String) {
        let answer = t.answer.as_deref().unwrap_or("").trim();
        if answer.is_empty() {
            return (Outcome::Failure, "no answer was given".into());
        }
        let checked: Vec<(usize, &str)> = if self.check_all_steps {
            t.steps
                .iter()
                .enumerate()
                .map(|(i, s)| (i, s.observation.as_str()))
                .collect()
        } else {
            t.steps
                .iter()
                .enumerate()
                .next_back()
                .map(|(i, s)| (i, s.observation.as_str()))
                .into_iter()
                .collect()
        };
        for (i, obs) in checked {
            if let Some(m) = self.marker_in(obs) {
                return (
                    Outcome::Failure,
                    format!("step {} observation shows error marker {m:?}", i + 1),
                );
            }
        }
        if let Some(m) = self.marker_in(answer) {
            return (
                Outcome::Failure,
                format!("the answer shows error marker {m:?}"),
            );
        }
        let lower = answer.to_lowercase();
        if let Some(p) = self
            .required_in_answer
            .iter()
            .find(|p| !lower.contains(p.as_str()))
        {
            return (
                Outcome::Failure,
                format!("the answer lacks required pattern {p:?}"),
            );
        }
        (
            Outcome::Success,
            "an answer was given and no error marker was observed".into(),
        )
    }
}

#[async_trait]
impl Judge for RuleJudge {
    async fn judge(&self, t: &Trajectory) -> Result<Verdict> {
        let (o, reasons) = self.decide(t);
        Ok(Verdict::new(o, reasons, "rule"))
    }
}

/// The paper's judge prompt, generalized from web navigation to any agent (its Appendix A.1:
/// thoughts, then a status line).
pub const JUDGE_SYSTEM_PROMPT: &str = "\
You are an expert in evaluating the performance of an AI agent. The agent is designed to help \
a human user complete a task. Given the user's task, the agent's trajectory (its actions and \
the observations they produced) and the agent's final answer, your goal is to decide whether \
the agent's execution is successful or not. If the task asks for information, the answer must \
contain it. If the task asks for an action, the trajectory must show that it was carried out.

*IMPORTANT*
Format your response into two lines as shown below:
Thoughts: <your thoughts and reasoning process>
Status: \"success\" or \"failure\"";

/// Renders a trajectory for a prompt: task, numbered steps, answer.
pub(crate) fn render_trajectory(t: &Trajectory) -> String {
    let mut s = format!("Task: {}\n\nTrajectory:\n", t.task);
    if t.steps.is_empty() {
        s.push_str("(no steps)\n");
    }
    for (i, step) in t.steps.iter().enumerate() {
        s.push_str(&format!(
            "{}. Action: {}\n   Observation: {}\n",
            i + 1,
            step.action,
            step.observation
        ));
    }
    s.push_str(&format!(
        "\nFinal answer: {}\n",
        t.answer.as_deref().unwrap_or("(none)")
    ));
    s
}

/// LLM-as-judge over an OpenAI-compatible chat API, with the paper's prompt shape
/// (`Thoughts: ...` / `Status: "success" | "failure"`).
///
/// An unreachable or misbehaving LLM is an error (typed: timeout, HTTP status, transport,
/// malformed output) unless a fallback judge is configured with
/// [`fallback`](LlmJudge::fallback): then the fallback decides, a warning is logged (crate
/// `log`), and the verdict records the LLM's error in [`Verdict::fallback_from`].
///
/// It judges every trajectory, even one that carries the caller's outcome. To trust the
/// caller's outcome when there is one and ask the LLM only otherwise, use it as the fallback
/// of an [`ExplicitJudge`].
#[derive(Clone, Debug)]
pub struct LlmJudge {
    client: ChatClient,
    fallback: Option<Arc<dyn Judge>>,
}

impl LlmJudge {
    /// A judge asking `client`, without fallback.
    pub fn new(client: ChatClient) -> Self {
        LlmJudge {
            client,
            fallback: None,
        }
    }
    /// The judge that decides, with a logged warning, when the LLM call fails. Defaults to
    /// none (the failure is returned).
    pub fn fallback(&mut self, judge: Arc<dyn Judge>) -> &mut Self {
        self.fallback = Some(judge);
        self
    }

    async fn ask(&self, t: &Trajectory) -> Result<Verdict> {
        let answer = self
            .client
            .complete(&[
                Message::system(JUDGE_SYSTEM_PROMPT),
                Message::user(render_trajectory(t)),
            ])
            .await?;
        parse_judgement(&answer)
    }
}

/// Parses `Thoughts: ...\nStatus: success|failure` (also `{"status": .., "thoughts": ..}`).
pub(crate) fn parse_judgement(text: &str) -> Result<Verdict> {
    let malformed = |reason: &str| Error::MalformedLlmOutput {
        what: "judge",
        reason: reason.to_owned(),
        excerpt: crate::error::excerpt(text),
    };
    let word = |s: &str| -> Option<Outcome> {
        let s = s
            .trim()
            .trim_matches(|c: char| c == '"' || c == '\'' || c == '*' || c == '.' || c == '`')
            .trim()
            .to_lowercase();
        match s.as_str() {
            "success" | "successful" => Some(Outcome::Success),
            "failure" | "failed" | "fail" => Some(Outcome::Failure),
            _ => None,
        }
    };
    let mut status = None;
    let mut thoughts = String::new();
    for line in text.lines() {
        let l = line.trim().trim_start_matches(['*', '#', ' ']);
        let lower = l.to_lowercase();
        if let Some(rest) = lower.strip_prefix("status:") {
            status = Some(
                word(rest).ok_or_else(|| malformed("`Status:` is neither success nor failure"))?,
            );
        } else if lower.starts_with("thoughts:") {
            thoughts = l["thoughts:".len()..].trim().to_owned();
        }
    }
    if status.is_none()
        && let Some(v) = crate::llm::extract_json(text)
        && let Some(s) = v.get("status").and_then(|s| s.as_str())
    {
        status = Some(word(s).ok_or_else(|| malformed("`status` is neither success nor failure"))?);
        thoughts = v
            .get("thoughts")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_owned();
    }
    // A small model may answer with the verdict alone ("Success"): that is a verdict too,
    // with no reasons. Anything longer without a status line is not.
    if status.is_none() {
        status = word(text);
    }
    let outcome = status.ok_or_else(|| malformed("no `Status:` line"))?;
    Ok(Verdict::new(outcome, thoughts, "llm"))
}

#[async_trait]
impl Judge for LlmJudge {
    async fn judge(&self, t: &Trajectory) -> Result<Verdict> {
        match self.ask(t).await {
            Ok(v) => Ok(v),
            Err(e) => match &self.fallback {
                None => Err(e),
                Some(f) => {
                    log::warn!(
                        "LLM judge at {} failed ({e}); using the configured fallback judge",
                        self.client.url()
                    );
                    let mut v = f.judge(t).await?;
                    v.fallback_from = Some(e.to_string());
                    Ok(v)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judgement_parsing() {
        let v = parse_judgement("Thoughts: the file was written.\nStatus: \"success\"").unwrap();
        assert_eq!(v.outcome, Outcome::Success);
        assert_eq!(v.reasons, "the file was written.");
        let v = parse_judgement("**Thoughts:** no.\n**Status:** failure").unwrap();
        assert_eq!(v.outcome, Outcome::Failure);
        let v = parse_judgement(r#"{"thoughts": "ok", "status": "success"}"#).unwrap();
        assert_eq!(v.outcome, Outcome::Success);
        assert!(matches!(
            parse_judgement("I think it went fine"),
            Err(Error::MalformedLlmOutput { .. })
        ));
        assert!(matches!(
            parse_judgement("Status: maybe"),
            Err(Error::MalformedLlmOutput { .. })
        ));
        // The verdict alone is a verdict (small models answer so); a sentence is not.
        assert_eq!(
            parse_judgement(" \"Success\".\n").unwrap().outcome,
            Outcome::Success
        );
        assert_eq!(parse_judgement("failed").unwrap().outcome, Outcome::Failure);
        assert!(parse_judgement("Success, I believe").is_err());
    }

    #[tokio::test]
    async fn rules() {
        let j = RuleJudge::new();
        let mut t = Trajectory::new("list files");
        t.step("ls", "a b c");
        assert_eq!(j.judge(&t).await.unwrap().outcome, Outcome::Failure);
        t.answer("a, b, c");
        assert_eq!(j.judge(&t).await.unwrap().outcome, Outcome::Success);
        t.step("cat a", "cat: a: No such file or directory");
        let v = j.judge(&t).await.unwrap();
        assert_eq!(v.outcome, Outcome::Failure);
        assert!(v.reasons.contains("step 2"), "{}", v.reasons);
        let mut j = RuleJudge::new();
        j.required_in_answer(["d"]);
        let mut t = Trajectory::new("x");
        t.answer("abc");
        assert_eq!(j.judge(&t).await.unwrap().outcome, Outcome::Failure);
    }

    #[tokio::test]
    async fn explicit() {
        let j = ExplicitJudge::new();
        let mut t = Trajectory::new("x");
        assert!(matches!(j.judge(&t).await, Err(Error::NoOutcome { .. })));
        t.reward(0.7);
        assert_eq!(j.judge(&t).await.unwrap().outcome, Outcome::Success);
        let mut j = ExplicitJudge::new();
        j.fallback(Arc::new(RuleJudge::new()));
        let v = j.judge(&Trajectory::new("x")).await.unwrap();
        assert_eq!((v.outcome, v.judge.as_str()), (Outcome::Failure, "rule"));
    }
}
