"""The console: a web workbench over the engine for the bank's people (editors, approvers,
relationship managers, branch leaders, auditors, operators). Pages are rendered on the server;
the browser never decides what is valid."""
