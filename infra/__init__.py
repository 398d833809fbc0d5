"""Infrastructure as code: CloudFormation resources, the waterfall state machine and the packaging step."""
