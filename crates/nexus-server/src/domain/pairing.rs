//! Pairing (SPEC §1 "Pairing code"; §2 pair endpoints): single-use codes that expire after
//! `PAIR_CODE_TTL_SECONDS`, claims that join the claimer at once (a refused join leaves the code
//! pending), and code states. Claimed and expired codes are remembered for another TTL, then
//! forgotten. Unknown codes take the same path as expired ones up to the answer (one store lookup);
//! malformed ones are refused before it (their shape is public, so this reveals nothing).

use nexus_proto::api::{Claimed, CreatePairRequest, PairCreated, PairStatus};
use nexus_proto::time::Millis;
use std::net::IpAddr;

use nexus_proto::{AgentId, ErrorCode, PairCode};

use super::sessions::join_refusal;
use super::{Relay, RelayError, caller, json_body, rate_limited, session_id, ts};
use crate::secrets::{new_pair_code, new_session_key};
use crate::store::{ClaimOutcome, CodeRecord, CodeState};

/// Codes drawn before giving up on a collision-free one.
const CODE_ATTEMPTS: usize = 8;

fn code_not_found() -> RelayError {
    RelayError::new(ErrorCode::CodeNotFound, "no such pairing code")
}

/// A code's state and, while it is known, when it expires (for the skill document).
pub struct CodeView {
    pub state: CodeState,
    pub code: Option<PairCode>,
    /// When a pending code expires.
    pub expires_at: Option<Millis>,
}

impl Relay {
    /// `PUT /v1/pair`.
    pub async fn create_code(&self, body: &[u8]) -> Result<PairCreated, RelayError> {
        let req =
            CreatePairRequest::from_json(json_body(body)?).map_err(RelayError::invalid_request)?;
        let id = session_id(&req.session_id)?;
        let now = self.now();
        self.existing(&id, now).await?;
        let ttl_ms: Millis = self.config.pair_code_ttl_seconds * 1000;
        // A fresh 47-bit code collides with a known one about once in 10^9 codes at 100,000
        // live codes; the store refuses a collision (it would repoint someone's code), and a new
        // code is drawn. Eight collisions in a row mean the random source is broken.
        for _ in 0..CODE_ATTEMPTS {
            let code = new_pair_code()?;
            let record = CodeRecord::fresh(code.clone(), id.clone(), now, ttl_ms);
            let expires_at = record.expires_at;
            if self.store.create_code(record).await? {
                return Ok(PairCreated {
                    url: format!("{}/p/{}", self.public_url, code),
                    code: code.to_string(),
                    expires_at: ts(expires_at),
                });
            }
        }
        Err(RelayError::Internal(
            "eight pairing codes in a row collided with known ones",
        ))
    }

    /// `POST /v1/pair/:code/claim`.
    /// Failed claims (404s) count against the caller's IP and the server-wide budget; past either,
    /// claims answer 429 until the window ends.
    pub async fn claim(
        &self,
        raw_code: &str,
        agent_header: Option<&str>,
        client: IpAddr,
    ) -> Result<Claimed, RelayError> {
        let agent = caller(agent_header)?;
        let now = self.now();
        self.counters
            .check_claims(
                client,
                self.config.claim_failures_per_minute,
                self.config.claim_failures_global_per_minute,
                now,
            )
            .await?
            .map_err(|secs| rate_limited(secs, "too many failed pairing claims"))?;
        let result = self.claim_code(raw_code, agent, now).await;
        let failed = result.as_ref().err().map(RelayError::code);
        if matches!(
            failed,
            Some(ErrorCode::CodeNotFound | ErrorCode::CodeExpiredOrUsed)
        ) {
            self.counters.record_claim_failure(client, now).await?;
        }
        result
    }

    async fn claim_code(
        &self,
        raw_code: &str,
        agent: AgentId,
        now: Millis,
    ) -> Result<Claimed, RelayError> {
        let Some(code) = PairCode::parse(raw_code) else {
            return Err(code_not_found());
        };
        let key = new_session_key()?;
        match self
            .store
            .claim_code(&code, &agent, key.clone(), now)
            .await?
        {
            ClaimOutcome::Claimed { record } => Ok(Claimed {
                session_id: record.id.to_string(),
                status: "claimed".into(),
                session_key: key.as_str().to_owned(),
                expires_at: ts(record.expires_at),
            }),
            ClaimOutcome::Unknown => Err(code_not_found()),
            ClaimOutcome::ExpiredOrUsed => Err(RelayError::new(
                ErrorCode::CodeExpiredOrUsed,
                "this pairing code has expired or was already claimed; ask for a new one",
            )),
            ClaimOutcome::Refused(outcome) => Err(join_refusal(outcome)),
        }
    }

    /// The state of a code, `Unknown` for malformed ones.
    pub async fn code_view(&self, raw_code: &str) -> Result<CodeView, RelayError> {
        let Some(code) = PairCode::parse(raw_code) else {
            return Ok(CodeView {
                state: CodeState::Unknown,
                code: None,
                expires_at: None,
            });
        };
        let (state, expires_at) = self.store.code_state(&code, self.now()).await?;
        Ok(CodeView {
            state,
            code: Some(code),
            expires_at,
        })
    }

    /// `GET /v1/pair/:code/status`.
    pub async fn code_status(&self, raw_code: &str) -> Result<PairStatus, RelayError> {
        let state = match self.code_view(raw_code).await?.state {
            CodeState::Pending => "pending",
            CodeState::Claimed => "claimed",
            CodeState::Expired => "expired",
            CodeState::Unknown => return Err(code_not_found()),
        };
        Ok(PairStatus {
            state: state.into(),
        })
    }
}
