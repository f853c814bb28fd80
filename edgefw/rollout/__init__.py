"""Fleet rollouts: one signed bundle, staged over many Linux devices,
each stage gated on the devices' own committed-and-healthy status, the
rollout stopped and the updated devices rolled back when a stage fails
too often (docs/fleet.md).

    plan.py       the plan file and its strict checks
    stages.py     stage sizes and the failure rule (pure arithmetic)
    inventory.py  the devices a plan targets (one reader, later the registry)
    health.py     what "healthy" means, judged from the device's status
    state.py      the journaled rollout state (resume after a crash)
    engine.py     the in-process engine over SSH
    ansible.py    the same plan as an Ansible playbook run
    cli.py        ``rollout PLAN [--dry-run]``, ``status PLAN``
"""
