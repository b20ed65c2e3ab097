#!/usr/bin/env bash
# `make demo`: the snapshot_guard role on a fleet of three throwaway guests. Each guest is upgraded from release 1 to
# release 2 under a guard snapshot; web2's upgrade breaks half way and is rolled back, web1 and web3 keep theirs. Then
# the demo shows what the role reported, each domain's snapshot tree, and the data on each disk, and removes its three
# domains (and only those) however it ends.
#
# The guests are libvirt domains without an OS (vmsnap_testctl makes them); a "release" is a byte pattern on the disk,
# written and read through QEMU. `make demo` sets the environment: the staged collection on ANSIBLE_COLLECTIONS_PATH,
# the .venv first on PATH and as ANSIBLE_PYTHON_INTERPRETER, and VMSNAP_TESTCTL.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
demo=hacking/demo
prefix=vmsnap-demo-
guests=(web1 web2 web3)
# The test tool's command; its words that are relative paths are made absolute, because the demo's tasks run it from
# other folders.
read -r -a testctl <<<"${VMSNAP_TESTCTL:-.venv/bin/python tests/integration/targets/setup_libvirt/files/vmsnap_testctl.py}"
for i in "${!testctl[@]}"; do
    if [[ ${testctl[i]} != /* && -e ${testctl[i]} ]]; then testctl[i]=$repo_root/${testctl[i]}; fi
done
export VMSNAP_TESTCTL="${testctl[*]}"

work=$(mktemp -d)
results=$work/results.json
report=$work/report.txt

if [[ -t 1 ]]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' plain=$'\e[0m'; else bold='' green='' red='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '   %s\n' "$*"; }

release_of() {
    # The release on a guest's disk: 1 (0x11), 2 (0x22), or "broken" (0x33, a half-done upgrade).
    local domain=$1 pattern
    for pattern in 0x22 0x11 0x33; do
        if "${testctl[@]}" check "$domain" "$pattern" >/dev/null; then
            case $pattern in 0x11) echo "release 1" ;; 0x22) echo "release 2" ;; 0x33) echo "broken (half upgraded)" ;; esac
            return
        fi
    done
    echo "unknown data"
}

cleanup() {
    step "5. Clean up: remove the three demo domains (only those)"
    "${testctl[@]}" destroy "${guests[@]/#/$prefix}" | sed 's/^/   /'
    rm -rf "$work"
}
trap cleanup EXIT

step "1. Three throwaway guests, each running release 1"
for guest in "${guests[@]}"; do
    "${testctl[@]}" create "$prefix$guest" --start >/dev/null
    "${testctl[@]}" write "$prefix$guest" 0x11 >/dev/null
    say "$guest: domain $prefix$guest created and running; $(release_of "$prefix$guest") on its disk"
done

step "2. Upgrade the fleet to release 2, every guest guarded by a snapshot"
say "ansible-playbook $demo/upgrade.yml: the role vmsnap.libvirt.snapshot_guard on web1, web2 and web3."
say "Per guest: preflight, guard snapshot, upgrade, health check; web2's upgrade breaks half way on purpose."
say "(Only changes and failures are shown.)"
echo
rc=0
ANSIBLE_DISPLAY_OK_HOSTS=false ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0} \
    ansible-playbook -i "$demo/inventory.yml" "$demo/upgrade.yml" -e "demo_results=$results" || rc=$?
echo
outcomes=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(" ".join("%s=%s" % (g, r[g].get("outcome")) for g in sorted(r)))' "$results" 2>/dev/null || true)
if [[ $rc == 2 && $outcomes == "web1=changed web2=rolled_back web3=changed" ]]; then
    say "ansible-playbook exited 2 because web2 failed: its upgrade broke, and it was rolled back. As planned."
else
    say "${red}Not as planned: ansible-playbook exited $rc (expected 2), outcomes: ${outcomes:-none}${plain}"
    say "${red}(expected web1=changed web2=rolled_back web3=changed).${plain}"
    exit 1
fi

step "3. What the role reported (snapshot_guard_result), and each domain's snapshot tree"
if ! ansible-playbook -i "$demo/inventory.yml" "$demo/report.yml" -e "demo_results=$results" -e "demo_report=$report" \
        >"$work/report.log" 2>&1; then
    cat "$work/report.log"
    exit 1
fi
sed 's/^/   /' "$report"

step "4. The data on each disk"
failures=0
for guest in "${guests[@]}"; do
    expected="release 2"
    [[ $guest == web2 ]] && expected="release 1"
    found=$(release_of "$prefix$guest")
    if [[ $found == "$expected" ]]; then
        say "${green}ok${plain}    $guest: $found$([[ $guest == web2 ]] && echo ' (rolled back: the broken upgrade is gone)')"
    else
        say "${red}WRONG${plain} $guest: $found, expected $expected"
        failures=$((failures + 1))
    fi
done
if ((failures)); then
    say "${red}The demo did not end as it should: $failures guest(s) hold the wrong data.${plain}"
    exit 1
fi
say "web1 and web3 run release 2; web2 runs release 1 again, and its broken state is kept as a snapshot."
