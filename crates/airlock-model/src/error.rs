//! The error vocabulary (classes, stable codes, refusals) and what parsing
//! and validating the model can refuse. The engine's error
//! (`airlock_core::Error`) holds each of these as a variant of its own, with
//! the same message and code, so that callers see one error type.

use crate::diag::Diagnostic;
use crate::state::State;

/// How the CLI should classify an error (its exit code, [`ErrorClass::exit_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A rule said no: wrong state, stale approval, failed verification.
    Refused,
    /// The input is wrong: a bad brief, an unknown run, a missing file.
    Invalid,
    /// The environment failed: git missing, disk full, a lock or a socket.
    Environment,
    /// airlock's own records contradict themselves or cannot be read.
    Corrupt,
    /// airlock itself failed: a bug, not anything the user did.
    Internal,
}

impl ErrorClass {
    /// 1 refused, 2 invalid input, 3 environment, 4 corrupt state, 5
    /// internal failure (a program that cannot be started exits as a shell
    /// would instead: `airlock_core::Error::NotRunnable`).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorClass::Refused => 1,
            ErrorClass::Invalid => 2,
            ErrorClass::Environment => 3,
            ErrorClass::Corrupt => 4,
            ErrorClass::Internal => 5,
        }
    }

    /// The class's name in `--json` (`error.class`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Invalid => "invalid",
            ErrorClass::Environment => "environment",
            ErrorClass::Corrupt => "corrupt",
            ErrorClass::Internal => "internal",
        }
    }
}

/// Declares [`Code`]: each code's variant, its kebab-case text and its class.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal, $class:ident;)*) => {
        /// A stable, machine-readable name for what went wrong (`error.code`
        /// in `--json`), so that an agent can branch on a refusal without
        /// reading English. Every code is documented in docs/errors.md.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// One code, one class: the exit code follows from the code.
            pub fn class(self) -> ErrorClass {
                match self {
                    $(Code::$variant => ErrorClass::$class,)*
                }
            }
        }
    };
}

codes! {
    // Input (exit 2).
    NotARepository = "not-a-repository", Invalid;
    InvalidBrief = "invalid-brief", Invalid;
    InvalidWorkflow = "invalid-workflow", Invalid;
    InvalidAction = "invalid-action", Invalid;
    UnreadableFile = "unreadable-file", Invalid;
    NoWorkflow = "no-workflow", Invalid;
    UnknownRun = "unknown-run", Invalid;
    AmbiguousRun = "ambiguous-run", Invalid;
    InvalidInput = "invalid-input", Invalid;
    DatabaseUrlInvalid = "database-url-invalid", Invalid;
    DatabaseUrlPassword = "database-url-password", Invalid;
    NoDirectory = "no-directory", Invalid;
    NotRunnable = "not-runnable", Invalid;
    SnapInvalid = "snap-invalid", Invalid;
    InvalidAddress = "invalid-address", Invalid;
    ReviewersInvalid = "reviewers-invalid", Invalid;
    OwnersInvalid = "owners-invalid", Invalid;
    // Environment (exit 3).
    WriteFailed = "write-failed", Environment;
    GitFailed = "git-failed", Environment;
    GitMissing = "git-missing", Environment;
    LedgerFailed = "ledger-failed", Environment;
    LedgerBusy = "ledger-busy", Environment;
    SandboxFailed = "sandbox-failed", Environment;
    SnapIo = "snap-io", Environment;
    ScanFailed = "scan-failed", Environment;
    DatabaseFailed = "database-failed", Environment;
    DatabaseUnreachable = "database-unreachable", Environment;
    DatabaseCredentials = "database-credentials", Environment;
    DatabaseNewerSchema = "database-newer-schema", Environment;
    Environment = "environment", Environment;
    PortInUse = "port-in-use", Environment;
    ListenFailed = "listen-failed", Environment;
    // Corrupt state (exit 4) and internal failure (exit 5).
    CorruptState = "corrupt-state", Corrupt;
    LogCorrupt = "log-corrupt", Corrupt;
    Internal = "internal", Internal;
    NoEvaluator = "no-evaluator", Internal;
    NoStoreBackend = "no-store-backend", Internal;
    // Refusals (exit 1): a rule said no.
    WrongState = "wrong-state", Refused;
    OfflineConflict = "offline-conflict", Refused;
    KeyMissing = "key-missing", Refused;
    KeyUnusable = "key-unusable", Refused;
    ProofInvalid = "proof-invalid", Refused;
    StaleApproval = "stale-approval", Refused;
    ProofUnverified = "proof-unverified", Refused;
    InsideRun = "inside-run", Refused;
    InsideWorktree = "inside-worktree", Refused;
    KeyDirInRepository = "key-dir-in-repository", Refused;
    UnsafeKeyDir = "unsafe-key-dir", Refused;
    UnsafeWorktree = "unsafe-worktree", Refused;
    SandboxPathUnreadable = "sandbox-path-unreadable", Refused;
    SandboxUnsupported = "sandbox-unsupported", Refused;
    SandboxNotBuilt = "sandbox-not-built", Refused;
    EgressNotStarted = "egress-not-started", Refused;
    WorktreeChanged = "worktree-changed", Refused;
    BriefChanged = "brief-changed", Refused;
    WorkflowChanged = "workflow-changed", Refused;
    ConcurrentChange = "concurrent-change", Refused;
    CheckNotPassed = "check-not-passed", Refused;
    ConditionBlocked = "condition-blocked", Refused;
    RunRefMoved = "run-ref-moved", Refused;
    TargetMissing = "target-missing", Refused;
    TargetMoved = "target-moved", Refused;
    TargetRewritten = "target-rewritten", Refused;
    TargetConflict = "target-conflict", Refused;
    MergeConflict = "merge-conflict", Refused;
    GateFailedMerged = "gate-failed-merged", Refused;
    StopFailedMerged = "stop-failed-merged", Refused;
    UncommittedChanges = "uncommitted-changes", Refused;
    MissingActionEnv = "missing-action-env", Refused;
    WorktreeQuota = "worktree-quota", Refused;
    SnapshotQuota = "snapshot-quota", Refused;
    DetachedHead = "detached-head", Refused;
    NoReleaseTable = "no-release-table", Refused;
    ReleaseInProgress = "release-in-progress", Refused;
    NothingToRelease = "nothing-to-release", Refused;
    SoakNotOver = "soak-not-over", Refused;
    SoakProbeFailed = "soak-probe-failed", Refused;
    NotSoaking = "not-soaking", Refused;
    UnknownSoakGate = "unknown-soak-gate", Refused;
    UnknownOutcome = "unknown-outcome", Refused;
    ScopeViolation = "scope-violation", Refused;
    ScopeNotGranted = "scope-not-granted", Refused;
    ActionProblems = "action-problems", Refused;
    ActionUnsendable = "action-unsendable", Refused;
    EnvNotGranted = "env-not-granted", Refused;
    UnknownRemote = "unknown-remote", Refused;
    PushNotApproved = "push-not-approved", Refused;
    InvalidAttachment = "invalid-attachment", Refused;
    ProtectedRef = "protected-ref", Refused;
    RemoteUnreachable = "remote-unreachable", Refused;
    ActionNotResolvable = "action-not-resolvable", Refused;
    LedgerBehind = "ledger-behind", Refused;
    LedgerUnproven = "ledger-unproven", Refused;
    LedgerChainBroken = "ledger-chain-broken", Refused;
    NothingToAccept = "nothing-to-accept", Refused;
    UnknownTrace = "unknown-trace", Refused;
    SnapOnCi = "snap-on-ci", Refused;
    McpServerUnknown = "mcp-server-unknown", Refused;
    McpDenied = "mcp-denied", Refused;
    McpDefinitionChanged = "mcp-definition-changed", Refused;
    McpUnknownTool = "mcp-unknown-tool", Refused;
    McpArgumentsTooLarge = "mcp-arguments-too-large", Refused;
    OtherRun = "other-run", Refused;
    LaneRefused = "lane-refused", Refused;
    PanelWithdrew = "panel-withdrew", Refused;
    ListenRequired = "listen-required", Refused;
    LogInconsistent = "log-inconsistent", Refused;
    LogUnsealed = "log-unsealed", Refused;
    CheckpointInvalid = "checkpoint-invalid", Refused;
    RunnersMissing = "runners-missing", Refused;
    // Promotion on the shared remote (issue 20).
    RemoteRejected = "remote-rejected", Refused;
    LeaseHeld = "lease-held", Refused;
    TargetMovedTooOften = "target-moved-too-often", Refused;
    RemoteRecordInvalid = "remote-record-invalid", Refused;
    MergeNotOnTarget = "merge-not-on-target", Refused;
    ApprovalUnsigned = "approval-unsigned", Refused;
    ApprovalInvalid = "approval-invalid", Refused;
    ApproverIsAuthor = "approver-is-author", Refused;
    ApprovalsMissing = "approvals-missing", Refused;
    ReviewerUnknown = "reviewer-unknown", Refused;
    ReviewerKeyExpired = "reviewer-key-expired", Refused;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} has {} problem{}", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    InvalidToml {
        code: Code,
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("run {run} is {state}; `{command}` needs it to be {needed}")]
    WrongState {
        run: String,
        state: State,
        command: &'static str,
        needed: String,
        next: String,
    },
    #[error("{0}")]
    Refused(Refusal),
    #[error("{0}")]
    Invalid(String),
}

/// A rule refused an operation: what, why, and what would make it pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub code: Code,
    pub what: String,
    pub reasons: Vec<String>,
    pub hint: String,
    /// The refusal as data, for `--json` (`error.details`): e.g. a
    /// `lane-refused`'s lane, capability and the lane that grants it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Refusal {
    /// A refusal with `code`, which must be a refusal's code.
    pub fn new(
        code: Code,
        what: impl Into<String>,
        reasons: Vec<String>,
        hint: impl Into<String>,
    ) -> Refusal {
        debug_assert_eq!(code.class(), ErrorClass::Refused, "{code} is not a refusal");
        Refusal::problem(code, what, reasons, hint)
    }

    /// A failure of any class said as a refusal is (what, why, what to do),
    /// with its own code: e.g. a database that cannot be reached
    /// (`database-unreachable`, exit 3).
    pub fn problem(
        code: Code,
        what: impl Into<String>,
        reasons: Vec<String>,
        hint: impl Into<String>,
    ) -> Refusal {
        Refusal {
            code,
            what: what.into(),
            reasons,
            hint: hint.into(),
            details: None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)?;
        for reason in &self.reasons {
            write!(f, "\n  - {reason}")?;
        }
        Ok(())
    }
}

impl Error {
    pub fn refused(
        code: Code,
        what: impl Into<String>,
        reasons: Vec<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Refused(Refusal::new(code, what, reasons, hint))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
