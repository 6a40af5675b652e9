# Count one TAP stream from an OCI runtime-tools validation executable.
#
# Only lines starting in column 0 are TAP results: runtimetest's output is
# sometimes echoed indented inside YAML diagnostics, and those lines must not
# be counted a second time.
#
# Prints one line: "ok notok skip todo nresults plans planned yamlerr".
# With -v fails=FILE, appends every failing result as "N - description" to
# FILE so the caller can match it against the known-bugs table.

function directive(line,    l) {
	l = toupper(line)
	if (l ~ / # *SKIP([ \t]|$)/) return "skip"
	if (l ~ / # *TODO([ \t]|$)/) return "todo"
	return ""
}

/^ok( |$)/ {
	n++
	d = directive($0)
	if (d == "skip") skip++
	else if (d == "todo") todo++
	else ok++
	next
}

/^not ok( |$)/ {
	n++
	# A failing TODO is expected to fail: it is neither a pass nor a failure.
	if (directive($0) == "todo") { todo++; next }
	notok++
	if (fails != "") {
		desc = $0
		sub(/^not ok +/, "", desc)
		print desc >> fails
	}
	next
}

/^1\.\.[0-9]+/ {
	plans++
	p = $0
	sub(/^1\.\./, "", p)
	planned += p + 0
	next
}

# The hook tests report a failed check only as a YAML diagnostic with an
# "error" key and a plan of 1..0; the caller decides what that means.
/^[ \t]+"?error"?:/ { yamlerr++ }

END {
	printf "%d %d %d %d %d %d %d %d\n", ok, notok, skip, todo, n, plans, planned, yamlerr
}
