"""A simulator of the synthesized stack's scaling: `python -m infra.simulate`.

It reads a synthesized template (cdk.out/*.template.json) rather than the
Python settings, so it tests what would be deployed: the fleets' scalable
targets, the alarms (metrics, expressions, periods, statistics, thresholds,
evaluation periods, datapoints to alarm, missing data) and the step policies
they drive. Then it runs the control loop second by second (model.py, which
lists every modelling choice) through the scenarios of scenarios.py.
"""
