#!/bin/sh
# The DNS-01 hook of spec.acme (docs/tls.md): `edgectl certs renew` runs it without a shell's
# help, once per name, with
#   EDGECTL_ACME_ACTION  set | clear
#   EDGECTL_ACME_DOMAIN  the name (status.globex-retail.example)
#   EDGECTL_ACME_RECORD  the TXT record: _acme-challenge.status.globex-retail.example
#   EDGECTL_ACME_VALUE   the TXT value
# Replace the body with a call to your DNS provider's API (its credentials from the environment),
# exit 0 once the record is set or cleared, non-zero otherwise.
echo "hooks/dns-01.sh: edit it for your DNS provider (would $EDGECTL_ACME_ACTION $EDGECTL_ACME_RECORD)" >&2
exit 1
