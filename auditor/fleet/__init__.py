"""Many machines: gathering one snapshot per node, from a Ray cluster (ray_cluster.py) or from the
files any engine saved (merge.py: Slurm's srun, a Kubernetes DaemonSet). Judging and comparing the
nodes is the decision layer's (auditor/decisions/fleet.py)."""
