/* Bare libpcap read: the floor for any tool that reads a capture file.
 * pcap_open_offline + pcap_next_ex loop, counting packets and captured bytes.
 * Build: gcc -O2 -o bench/out/pcap_read bench/pcap_read.c -lpcap */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        puts(pcap_lib_version()); /* "libpcap version 1.10.3 (with TPACKET_V3)" */
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap | --version\n", argv[0]);
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "pcap_open_offline: %s\n", err);
        return 2;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0, wire = 0;
    uint32_t sink = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen;
        wire += h->len;
        if (h->caplen) /* touch the data, as any consumer would */
            sink += data[h->caplen - 1];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "pcap_next_ex: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("packets=%llu bytes=%llu wire_bytes=%llu sink=%u\n", (unsigned long long)packets,
           (unsigned long long)bytes, (unsigned long long)wire, (unsigned)sink);
    return 0;
}
