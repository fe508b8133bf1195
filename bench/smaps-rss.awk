# bench/smaps-rss.awk: a VMM's resident memory from one /proc/PID/smaps, mapping by mapping.
# Used by bench/vmm-rss.sh and bench/vm-paths.sh (POSIX awk: runs in busybox inside the sandbox).
#
#   awk -v guest_kib=KIB [-v summary=1] -f bench/smaps-rss.awk /proc/PID/smaps
#
# guest_kib is the guest RAM size in KiB. The guest RAM is the anonymous (or memfd) mapping of
# that size; the kernel may merge a few adjacent anonymous pages into it, so up to 1 MiB more
# counts too. Prints a table of resident kB per mapping and the line
#   process RSS N kB, guest RAM resident N kB: VMM overhead N.N MiB
# (VMM overhead as Firecracker counts it: process RSS − resident guest RAM); with summary=1
# only "rss_kb guest_kb overhead_kb". Prints nothing when the file was empty (the process ended).
/^[0-9a-f]+-[0-9a-f]+ / {
  name = $6 == "" ? "[anonymous]" : $6
  next
}
/^Size:/ {
  if ((name == "[anonymous]" || name ~ /^\/memfd:/) && $2 >= guest_kib && $2 < guest_kib + 1024)
    name = "[guest RAM]"
  next
}
/^Rss:/ { rss[name] += $2; total += $2; seen = 1 }
END {
  if (!seen) exit
  if (summary) {
    printf "%d %d %d\n", total, rss["[guest RAM]"], total - rss["[guest RAM]"]
    exit
  }
  printf "%10s  %s\n", "resident", "mapping"
  for (n in rss) if (rss[n] > 0) printf "%7d kB  %s\n", rss[n], n | "sort -rn"
  close("sort -rn")
  printf "process RSS %d kB, guest RAM resident %d kB: VMM overhead %.1f MiB\n",
    total, rss["[guest RAM]"], (total - rss["[guest RAM]"]) / 1024
}
