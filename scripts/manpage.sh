#!/usr/bin/env bash
# manpage.sh prints vipbridge(8) in roff, from the binary's own usage texts
# (`vipbridge help`, `vipbridge run -h`), so that it names every flag and
# its VIPBRIDGE_* variable as the binary has them. scripts/build-deb.sh
# installs it as /usr/share/man/man8/vipbridge.8.gz.
#
#   scripts/manpage.sh BINARY VERSION
set -euo pipefail
bin=$1 version=$2

# roff: backslashes and hyphens escaped, no line starting with . or '.
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

cat <<END
.TH VIPBRIDGE 8 "" "vipbridge $version" "System Administration"
.SH NAME
vipbridge \\- service discovery with stable virtual IPs for Marathon/Mesos
.SH SYNOPSIS
.B vipbridge run
.RI [ flags ]
.br
.B vipbridge demo
.RI [ flags ]
.br
.B vipbridge zone
.RI [ flags ]
.br
.B vipbridge version
.SH DESCRIPTION
.B vipbridge
follows Marathon's event stream and the Mesos master, gives every named VIP
a stable virtual IP, answers DNS for the names of a DC/OS cluster and
programs Linux IPVS so that connections to a VIP reach its live, healthy
tasks. Its state is kept in bbolt under the data directory, so that a
restarted node answers before Marathon does.
.PP
The commands:
.PP
.nf
END
"$bin" help | sed -n 's/^  vipbridge /vipbridge /p' | esc
cat <<'END'
.fi
.SH OPTIONS
The flags of
.BR "vipbridge run" .
Each can also be set as the environment variable named after it (upper
case, \- becomes _); a flag on the command line wins.
END
# `run -h`: "  -name type" lines, each followed by its indented description.
"$bin" run -h 2>&1 | awk '
	function roff(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); return s }
	/^  -/ {
		name = substr($1, 2); arg = $2
		env = "VIPBRIDGE_" toupper(name); gsub("-", "_", env)
		printf ".TP\n\\fB\\-\\-%s\\fP%s (\\fB%s\\fP)\n", roff(name), (arg != "" ? " \\fI" arg "\\fP" : ""), env
		next
	}
	/^    / { sub(/^[ \t]+/, ""); print roff($0) }'
cat <<'END'
.SH FILES
.TP
.I /etc/default/vipbridge
The environment of vipbridge.service: every VIPBRIDGE_* variable, commented
out with its default.
.TP
.I /var/lib/vipbridge/vipbridge.db
The stored state (bbolt).
.TP
.I /lib/systemd/system/vipbridge.service
Type=notify: ready once the first table is served; a watchdog on the
reconciler's loop; hardened, as the user vipbridge.
.TP
.I /lib/systemd/system/vipbridge.socket
The DNS and HTTP sockets, held by systemd across restarts and upgrades.
.SH EXIT STATUS
0 after a clean shutdown (SIGTERM, SIGINT), 1 after an error.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR ipvsadm (8),
.BR dig (1)
END
