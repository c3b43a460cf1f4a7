"""Pure building blocks shared by every layer (keys and certificates, MySQL DSNs). No Pulumi, no I/O."""
