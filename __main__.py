"""The Pulumi program `pulumi up -s <stack>` runs: config -> components -> exports.

Thin on purpose: everything lives in the installed package (kuscia_components.program), which
the Automation API runs as its inline program too.
"""

from kuscia_components.program import party_program

party_program()
