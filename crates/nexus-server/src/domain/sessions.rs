//! Sessions (SPEC §1 "Session", "Creator", "Leave order of checks"; §2 session endpoints):
//! create with defaults and limits, status, join, leave, renew.

use nexus_proto::api::{
    CreateSessionRequest, DEFAULT_TTL_SECONDS, Joined, Left, MemberInfo, RenewRequest, Renewed,
    SessionCreated, SessionStatus,
};
use nexus_proto::time::Millis;
use nexus_proto::{AgentId, ErrorCode, FieldProblem, SessionId};

use super::{
    Relay, RelayError, caller, json_body, parse_agent_id, session_id, session_not_found, ts,
};
use crate::secrets::{new_session_id, new_session_key};
use crate::store::{JoinOutcome, LeaveOutcome, MemberRecord, SessionRecord};

const ACTIVE: &str = "active";

pub(crate) fn join_refusal(outcome: JoinOutcome) -> RelayError {
    match outcome {
        JoinOutcome::SessionNotFound | JoinOutcome::Joined { .. } => session_not_found(),
        JoinOutcome::AgentIdTaken => RelayError::new(
            ErrorCode::AgentIdTaken,
            "an agent with this id has already joined this session; choose another id",
        ),
        JoinOutcome::SessionFull => RelayError::new(
            ErrorCode::SessionFull,
            "the session has reached its maxAgents limit",
        ),
    }
}

fn forbidden(message: &str) -> RelayError {
    RelayError::new(ErrorCode::Forbidden, message)
}

impl Relay {
    /// The session as it is now, or `session_not_found`.
    pub(crate) async fn existing(
        &self,
        id: &SessionId,
        now: Millis,
    ) -> Result<SessionRecord, RelayError> {
        self.store
            .session(id, now)
            .await?
            .ok_or_else(session_not_found)
    }

    /// `PUT /v1/sessions`.
    pub async fn create_session(
        &self,
        agent_header: Option<&str>,
        body: &[u8],
    ) -> Result<SessionCreated, RelayError> {
        let req = CreateSessionRequest::from_json(json_body(body)?, self.limits())
            .map_err(RelayError::invalid_request)?;
        let header = match agent_header {
            None | Some("") => None,
            Some(raw) => Some(parse_agent_id(raw, "X-Agent-Id")?),
        };
        let body_creator = match &req.creator_agent_id {
            Some(raw) => Some(parse_agent_id(raw, "creatorAgentId")?),
            None => None,
        };
        let creator = match (body_creator, header) {
            (Some(b), Some(h)) if b != h => {
                return Err(RelayError::new(
                    ErrorCode::CreatorIdentityConflict,
                    "creatorAgentId and X-Agent-Id name different agents",
                )
                .with_details(vec![FieldProblem::new(
                    "creatorAgentId",
                    "differs from the X-Agent-Id header",
                )]));
            }
            (b, h) => b.or(h),
        };
        let now = self.now();
        let ttl = req
            .ttl
            .unwrap_or(DEFAULT_TTL_SECONDS.min(self.config.max_ttl_seconds));
        let key = match creator {
            Some(_) => Some(new_session_key()?),
            None => None,
        };
        let record = SessionRecord {
            id: new_session_id()?,
            ttl_secs: ttl,
            max_agents: req.max_agents.unwrap_or(self.config.max_agents),
            created_at: now,
            expires_at: now + ttl * 1000,
            creator: creator.clone(),
            greeting: req.greeting.clone(),
            members: match (&creator, &key) {
                (Some(agent), Some(key)) => vec![MemberRecord {
                    agent_id: agent.clone(),
                    key: key.clone(),
                    joined_at: now,
                    last_seen_at: now,
                }],
                _ => Vec::new(),
            },
            last_cursor: 0,
            cursor_ceiling: 0,
            lost_through: 0,
        };
        let created = SessionCreated {
            session_id: record.id.to_string(),
            state: ACTIVE.into(),
            ttl,
            max_agents: record.max_agents,
            expires_at: ts(record.expires_at),
            created_at: ts(now),
            creator_agent_id: creator.map(String::from),
            session_key: key.map(|k| k.as_str().to_owned()),
            greeting: req.greeting,
        };
        if !self
            .store
            .create_session(record, self.config.max_sessions)
            .await?
        {
            return Err(RelayError::new(
                ErrorCode::ServerAtCapacity,
                "the server holds its maximum number of sessions; try again later",
            ));
        }
        Ok(created)
    }

    /// `GET /v1/sessions/:id`.
    pub async fn session_status(&self, raw_id: &str) -> Result<SessionStatus, RelayError> {
        let id = session_id(raw_id)?;
        let rec = self.existing(&id, self.now()).await?;
        Ok(SessionStatus {
            session_id: rec.id.to_string(),
            state: ACTIVE.into(),
            ttl: rec.ttl_secs,
            max_agents: rec.max_agents,
            agents: rec.agent_ids(),
            members: rec
                .members
                .iter()
                .map(|m| MemberInfo {
                    agent_id: m.agent_id.to_string(),
                    joined_at: ts(m.joined_at),
                    last_seen_at: ts(m.last_seen_at),
                    creator: rec.creator.as_ref() == Some(&m.agent_id),
                })
                .collect(),
            creator_agent_id: rec.creator.as_ref().map(AgentId::to_string),
            expires_at: ts(rec.expires_at),
            created_at: ts(rec.created_at),
        })
    }

    /// `POST /v1/sessions/:id/join`.
    pub async fn join(
        &self,
        raw_id: &str,
        agent_header: Option<&str>,
    ) -> Result<Joined, RelayError> {
        let id = session_id(raw_id)?;
        let agent = caller(agent_header)?;
        let key = new_session_key()?;
        match self
            .store
            .join(&id, &agent, key.clone(), self.now())
            .await?
        {
            JoinOutcome::Joined { record } => Ok(Joined {
                status: "joined".into(),
                session_id: id.to_string(),
                agents_online: record.members.len() as u64,
                session_key: key.as_str().to_owned(),
                expires_at: ts(record.expires_at),
            }),
            other => Err(join_refusal(other)),
        }
    }

    /// `DELETE /v1/sessions/:id/agents/:agentId`, with the checks in SPEC's order: session,
    /// caller header, membership, creator, key presence, key validity.
    pub async fn leave(
        &self,
        raw_id: &str,
        path_agent: &str,
        agent_header: Option<&str>,
        key_header: Option<&str>,
    ) -> Result<Left, RelayError> {
        let id = session_id(raw_id)?;
        let now = self.now();
        let rec = self.existing(&id, now).await?;
        let agent = caller(agent_header)?;
        if agent.as_str() != path_agent {
            return Err(forbidden("an agent can only remove itself"));
        }
        if rec.member(&agent).is_none() {
            return Err(RelayError::new(
                ErrorCode::AgentNotFound,
                "this agent is not a member of the session",
            ));
        }
        if rec.creator.as_ref() == Some(&agent) {
            return Err(forbidden("the creator cannot leave the session"));
        }
        let key = match key_header {
            None | Some("") => {
                return Err(RelayError::new(
                    ErrorCode::MissingSessionKey,
                    "the X-Session-Key header is required to leave",
                ));
            }
            Some(k) => k,
        };
        // The store compares the key (in constant time, or as digests inside Redis) and removes
        // the member in one step.
        match self.store.leave(&id, &agent, key, now).await? {
            LeaveOutcome::Removed => Ok(Left {
                ok: true,
                status: "removed".into(),
                session_id: id.to_string(),
                agent_id: agent.to_string(),
                message: format!("{agent} left the session"),
            }),
            LeaveOutcome::SessionNotFound => Err(session_not_found()),
            LeaveOutcome::AgentNotFound => Err(RelayError::new(
                ErrorCode::AgentNotFound,
                "this agent is not a member of the session",
            )),
            LeaveOutcome::InvalidKey => Err(RelayError::new(
                ErrorCode::InvalidSessionKey,
                "the session key does not match this agent",
            )
            .with_status(401)),
        }
    }

    /// `POST /v1/sessions/:id/renew`.
    pub async fn renew(
        &self,
        raw_id: &str,
        agent_header: Option<&str>,
        body: &[u8],
    ) -> Result<Renewed, RelayError> {
        let id = session_id(raw_id)?;
        let agent = caller(agent_header)?;
        let req = RenewRequest::from_json(json_body(body)?, self.limits())
            .map_err(RelayError::invalid_request)?;
        let now = self.now();
        let rec = self.existing(&id, now).await?;
        if rec.member(&agent).is_none() {
            return Err(forbidden("only members of the session may renew it"));
        }
        let rec = self
            .store
            .renew(&id, req.ttl, now)
            .await?
            .ok_or_else(session_not_found)?;
        Ok(Renewed {
            session_id: rec.id.to_string(),
            state: ACTIVE.into(),
            ttl: rec.ttl_secs,
            expires_at: ts(rec.expires_at),
            agents: rec.agent_ids(),
        })
    }
}
