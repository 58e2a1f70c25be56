"""The tool templates shipped with toolrt (one JSON file each; see ``toolrt.application.tool_templates``)."""
