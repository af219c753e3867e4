//! Room leases: which node holds each room. A lease is a Redis key, `room → node`, with a
//! time to live that its node renews; the scripts here make each decision atomically in
//! Redis, so two nodes never both hold a room.

/// Claims a room for `ARGV[1]` for `ARGV[2]` ms: free, already ours, or held by a node whose
/// heartbeat (key `ARGV[3] .. owner`) is gone. Returns `{1, me}` if won, `{0, owner}` if not.
pub const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] or redis.call('EXISTS', ARGV[3] .. owner) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, owner}
";

/// Renews `ARGV[1]`'s leases (the keys) for `ARGV[2]` ms. Per key: 1 renewed, 2 taken again
/// (the key had gone, as after a Redis restart or a long outage), 0 lost to another node.
pub const RENEW: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif owner == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
";

/// Gives up `ARGV[1]`'s lease (the key), if it is still theirs.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Won,
    /// Another live node holds it.
    Held(super::NodeId),
}

/// What a renewal found for one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// The lease had expired and nobody had taken it: it is ours again.
    Retaken,
    /// Another node holds the room now: ours must close.
    Lost,
}

impl Renewal {
    /// Reads one of `RENEW`'s answers; anything unknown counts as lost, the safe side.
    pub fn from_code(code: i64) -> Renewal {
        match code {
            1 => Renewal::Renewed,
            2 => Renewal::Retaken,
            _ => Renewal::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_renewal_answer_counts_as_a_lost_lease() {
        assert_eq!(Renewal::from_code(1), Renewal::Renewed);
        assert_eq!(Renewal::from_code(2), Renewal::Retaken);
        for code in [0, -1, 3, i64::MAX] {
            assert_eq!(Renewal::from_code(code), Renewal::Lost);
        }
    }
}
