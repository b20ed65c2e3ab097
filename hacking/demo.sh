#!/usr/bin/env bash
# `make demo`: the snapshot_guard role on a fleet of three real Debian guests, web1..web3 (libvirt domains
# vmsnap-demo-web1..3, booted from the lab image of hacking/guest-image.sh, reached over SSH through 127.0.0.1 port
# forwards). Each guest runs release 1 of a small web application, a Debian package installed with apt from a local
# repository on the guest; the fleet is upgraded to release 2 under a guard snapshot. Release 2 is really broken on web2
# (its service does not start): its health check fails and the role rolls it back to the memory snapshot, while web1
# and web3 keep release 2. Then the demo shows, per guest, the installed package, what the health URL answers, what the
# role reported, the snapshot tree and the guest's clock against the host's, and checks that the story happened: it
# exits non-zero when not. It removes its three domains (and only those) however it ends.
#
# `make demo` builds the guest image first and sets the environment: the staged collection on ANSIBLE_COLLECTIONS_PATH,
# the .venv first on PATH and as ANSIBLE_PYTHON_INTERPRETER, and VMSNAP_TESTCTL.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
demo=hacking/demo
prefix=vmsnap-demo-
guests=(web1 web2 web3)
# How long a guest may take to boot: about 20 s alone on an idle machine, minutes when the host's two cores are busy.
boot_timeout=${DEMO_BOOT_TIMEOUT:-600}
# The test tool's command; its words that are relative paths are made absolute, because the demo's tasks run it from
# other folders.
read -r -a testctl <<<"${VMSNAP_TESTCTL:-.venv/bin/python tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py}"
for i in "${!testctl[@]}"; do
    if [[ ${testctl[i]} != /* && -e ${testctl[i]} ]]; then testctl[i]=$repo_root/${testctl[i]}; fi
done

work=$(mktemp -d)
started=$SECONDS

if [[ -t 1 ]]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' plain=$'\e[0m'; else bold='' green='' red='' plain=''; fi
step() { printf '\n%s== %s%s   [%d s]\n' "$bold" "$*" "$plain" $((SECONDS - started)); }
say() { printf '   %s\n' "$*"; }
fail() {
    say "${red}$*${plain}"
    exit 1
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    step "6. Clean up: remove the three demo domains (only those)"
    "${testctl[@]}" destroy "${guests[@]/#/$prefix}" 2>&1 | sed 's/^/   /' || true
    rm -rf "$work"
    if ((rc == 0)); then
        say "${green}The demo ran as planned, in $((SECONDS - started)) s.${plain}"
    else
        say "${red}The demo did not run as planned (exit $rc), after $((SECONDS - started)) s.${plain}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ansible_playbook() {
    ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0} ANSIBLE_PIPELINING=true \
        ansible-playbook -i "$demo/inventory.yml" -i "$work/connections.yml" --forks ${#guests[@]} \
        -e "demo_app_repos=$work/app" "$@"
}

step "1. Three Debian guests, booted in parallel, and the application's packages"
image=$(hacking/guest-image.sh 2>"$work/image.log") || { cat "$work/image.log"; fail "hacking/guest-image.sh failed"; }
say "guest image: $image"
declare -A booting=()
for guest in "${guests[@]}"; do
    "${testctl[@]}" guest create "$prefix$guest" --timeout "$boot_timeout" >"$work/$guest.json" 2>"$work/$guest.err" &
    booting[$guest]=$!
done
hacking/demo/build-app.sh "$work/app" >/dev/null
say "built on the host with dpkg-deb: $(cd "$work/app" && echo */*.deb)"
for guest in "${guests[@]}"; do
    if ! wait "${booting[$guest]}"; then
        cat "$work/$guest.err" >&2
        fail "$guest: vmsnap_testctl guest create $prefix$guest failed"
    fi
done
# The guests' connections, as host variables of web1..web3 (the inventory's other variables are in inventory.yml).
python3 - "$work" "${guests[@]}" <<'EOF'
import json
import sys

work, guests = sys.argv[1], sys.argv[2:]
hosts = {}
for guest in guests:
    with open("%s/%s.json" % (work, guest)) as created:
        hosts[guest] = {key: value for key, value in json.load(created).items() if key.startswith("ansible_")}
with open("%s/connections.yml" % work, "w") as inventory:
    json.dump({"guests": {"hosts": hosts}}, inventory, indent=2)
EOF
for guest in "${guests[@]}"; do
    say "$guest: domain $prefix$guest running, SSH on $(python3 -c 'import json, sys; i = json.load(open(sys.argv[1]))
print("%s:%s" % (i["ansible_host"], i["ansible_port"]))' "$work/$guest.json")"
done

step "2. Release 1 on every guest: vmsnap-demo-app 1.0, installed with apt from a local repository on the guest"
ansible_playbook "$demo/install.yml" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "installing release 1 failed"; }
say "apt installed vmsnap-demo-app 1.0 from file:/srv/repo on web1, web2 and web3; its health URL answers 1.0."

step "3. Upgrade the fleet to release 2, every guest guarded by a snapshot"
say "ansible-playbook $demo/upgrade.yml: the role vmsnap.libvirt.snapshot_guard on web1, web2 and web3."
say "Per guest: preflight, guard snapshot (with memory), apt upgrade, health check; release 2 is broken on web2."
say "(Only changes and failures are shown.)"
echo
rc=0
ANSIBLE_DISPLAY_OK_HOSTS=false ANSIBLE_DISPLAY_SKIPPED_HOSTS=false \
    ansible_playbook "$demo/upgrade.yml" -e "demo_results=$work/results.json" || rc=$?
echo
outcomes=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(" ".join("%s=%s" % (g, r[g].get("outcome")) for g in sorted(r)))' "$work/results.json" 2>/dev/null || true)
if [[ $rc == 2 && $outcomes == "web1=changed web2=rolled_back web3=changed" ]]; then
    say "ansible-playbook exited 2 because web2 failed: its upgrade broke, and it was rolled back. As planned."
else
    fail "Not as planned: ansible-playbook exited $rc (expected 2), outcomes: ${outcomes:-none} (expected web1=changed web2=rolled_back web3=changed)."
fi

step "4. What each guest runs now, what the role reported, its snapshot tree and its clock"
rc=0
ansible_playbook "$demo/report.yml" -e "demo_results=$work/results.json" -e "demo_report=$work/report.txt" \
    >"$work/report.log" 2>&1 || rc=$?
if [[ -s $work/report.txt ]]; then
    sed 's/^/   /' "$work/report.txt"
fi
if ((rc != 0)); then
    cat "$work/report.log"
    fail "The guests are not as the story says (see the failed check above)."
fi

step "5. The story happened"
say "${green}ok${plain}  web1, web3: release 2 installed, service active, health URL answers 2.0"
say "${green}ok${plain}  web2: rolled back to the guard snapshot: release 1 installed and healthy; the broken state is kept"
say "    as a snapshot. It resumed with the clock of the snapshot; the revert set it from the host's through the guest"
say "    agent (see 'clock at' above)."
