"""The ECS scenarios shared by the two Alibaba Cloud scripts (ids from src/sim/demo.toml).

  bind, unbind       AttachKeyPair / DetachKeyPair on a Linux instance
  bad-secret         bind, signed with the wrong AccessKeySecret
  unknown-instance   bind on a well-formed id that no cloud knows
  windows            bind on a Windows instance
  too-many           bind on 51 instances (AttachKeyPair takes at most 50)
  bind-elsewhere     bind on the caller's alias for a Lighthouse machine (matrix config only)
  replicate          bind testKeyPairName on the caller's alias for a CVM machine (i-aaaacvm1), which
                     CVM lacks: a gateway with the key's [[keys]] row replicating imports it first
  replicate-elsewhere  the same on the caller's alias for a Lighthouse machine (i-bbbblh01)
"""

REGION = "cn-hangzhou"
KEY = "FinanceJoshuaV25"
LINUX = "i-m5eg7be9ndloji64jknv"
WINDOWS = "i-m5ewindows2022srv001"
UNKNOWN = "i-bp10000000000000dead"
# The caller's alias for Lighthouse lhins-3k9d8f7s in the matrix config of tests/it/harness.rs.
ELSEWHERE = "i-bbbblh01"
# The caller's alias for CVM ins-1e4r6y8i, and an ECS key that CVM does not have.
ON_CVM = "i-aaaacvm1"
REPLICATED_KEY = "testKeyPairName"

SCENARIOS = {
    "bind",
    "unbind",
    "bad-secret",
    "unknown-instance",
    "windows",
    "too-many",
    "bind-elsewhere",
    "replicate",
    "replicate-elsewhere",
}


def plan(scenario):
    """The action, its instance ids and its key pair name for a scenario (AttachKeyPair takes at most 50)."""
    instances = {
        "bind": [LINUX],
        "unbind": [LINUX],
        "bad-secret": [LINUX],
        "unknown-instance": [UNKNOWN],
        "windows": [WINDOWS],
        "too-many": ["i-bp1%017d" % i for i in range(51)],
        "bind-elsewhere": [ELSEWHERE],
        "replicate": [ON_CVM],
        "replicate-elsewhere": [ELSEWHERE],
    }[scenario]
    action = "DetachKeyPair" if scenario == "unbind" else "AttachKeyPair"
    key = REPLICATED_KEY if scenario.startswith("replicate") else KEY
    return action, instances, key
