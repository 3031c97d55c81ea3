//! The Lua scripts of the Redis backend, compiled into the binary from `lua/*.lua`. Each session
//! script is `prelude.lua` (argument conventions, hash layout, keys' lifetime, wake-ups), the
//! helpers it needs (`members.lua`: loading, pruning, joining; `messages.lua`: dropping expired
//! messages) and its own steps, so every protocol step runs as one atomic script in one round
//! trip, touching only keys under the session's hash tag (Redis Cluster-safe). A script defines
//! only the helpers it uses: Lua creates every local function on every call.
//! Scripts are called by SHA-1 (`EVALSHA`); `conn::Conn` loads them on `NOSCRIPT`, e.g. after a
//! Redis restart.

use redis::Script;

macro_rules! session_script {
    ($file:literal $(, $part:literal)*) => {
        Script::new(concat!(
            include_str!("lua/prelude.lua"),
            $("\n", include_str!(concat!("lua/", $part)),)*
            "\n",
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// Every script, hashed once at start-up.
pub struct Scripts {
    pub create: Script,
    pub session: Script,
    pub join: Script,
    pub leave: Script,
    pub renew: Script,
    pub append: Script,
    pub read: Script,
    pub claim: Script,
    pub code_state: Script,
    pub census: Script,
    pub sweep: Script,
    pub index_add: Script,
    pub window: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            create: session_script!("create.lua"),
            session: session_script!("session.lua", "members.lua"),
            join: session_script!("join.lua", "members.lua"),
            leave: session_script!("leave.lua", "members.lua"),
            renew: session_script!("renew.lua", "members.lua"),
            append: session_script!("append.lua", "messages.lua"),
            read: session_script!("read.lua", "members.lua", "messages.lua"),
            claim: session_script!("claim.lua", "members.lua"),
            code_state: session_script!("code_state.lua"),
            census: session_script!("census.lua", "members.lua"),
            sweep: session_script!("sweep.lua", "messages.lua"),
            index_add: Script::new(include_str!("lua/index_add.lua")),
            window: Script::new(include_str!("lua/window.lua")),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_scripts_carry_the_prelude_and_hashes_differ() {
        let s = Scripts::new();
        let all = [
            &s.create,
            &s.session,
            &s.join,
            &s.leave,
            &s.renew,
            &s.append,
            &s.read,
            &s.claim,
            &s.code_state,
            &s.census,
            &s.sweep,
            &s.index_add,
            &s.window,
        ];
        let mut hashes: Vec<&str> = all.iter().map(|s| s.get_hash()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), all.len(), "every script is distinct");
    }
}
