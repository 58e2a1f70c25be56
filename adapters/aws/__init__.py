"""AWS adapters: DynamoDB, S3, AgentCore Gateway and Code Interpreter."""
