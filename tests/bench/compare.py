"""Joins BENCH lines of two runs (ours, peer) into a markdown table with ratios.

usage: compare.py OURS.txt PEER.txt [--peer-name torch] [--copy-reference]
For memory-bound rows the table also gives our bandwidth as a fraction of the device-to-device
copy bandwidth measured by the peer in the same run (the issue's yardstick)."""
import sys

def parse(path):
    rows = {}
    for line in open(path):
        parts = line.split()
        if len(parts) >= 5 and parts[0] == "BENCH":
            rows[(parts[1], parts[2])] = (float(parts[3]), parts[4])
    return rows

def main():
    ours, peer = parse(sys.argv[1]), parse(sys.argv[2])
    peer_name = "torch"
    if "--peer-name" in sys.argv:
        peer_name = sys.argv[sys.argv.index("--peer-name") + 1]
    copy = {k[1].split("_")[-1]: v[0] for k, v in peer.items() if k[0] == "membw" and k[1].startswith("copy_")}
    print(f"| kind | case | ours | {peer_name} | ours/{peer_name} | ours/copy |")
    print("|---|---|---|---|---|---|")
    for key, (value, unit) in ours.items():
        other = peer.get(key)
        ratio = f"{value / other[0]:.2f}" if other and other[0] > 0 else "-"
        vs_copy = "-"
        if key[0] == "membw":
            ref = copy.get(key[1].split("_")[-1])
            vs_copy = f"{value / ref:.2f}" if ref else "-"
        print(f"| {key[0]} | {key[1]} | {value:.1f} {unit} | {other[0] if other else '-'} | {ratio} | {vs_copy} |")

if __name__ == "__main__":
    main()
