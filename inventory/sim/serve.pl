#!/usr/bin/perl
# A simulated service's listeners, for inventory/sim/bin/sim: real sockets
# on a loopback address that answer the runbook's probes with the protocol
# they speak. Perl because perl-base is Essential on Debian (nothing to
# install) and has IO::Socket::INET and POSIX.
#   serve.pl STATE NAME ADDRESS PROTOCOL:PORT...
# PROTOCOL: dns (UDP and TCP), smtp, sip (UDP and TCP), http (pages from
# STATE/www/ADDRESS:PORT/, 404 otherwise), mllp (HL7 ACK), tcp (accepts).
# Binds everything first (an error exits 1 with the reason), then leaves
# for the background and writes STATE/run/NAME.pid. It exits when that
# file or STATE goes away (`sim reset`, or the folder removed).
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Socket qw(SOL_SOCKET SO_REUSEADDR);

my ($state, $name, $address, @specs) = @ARGV;
die "usage: serve.pl STATE NAME ADDRESS PROTOCOL:PORT...\n" unless @specs;
# Never anything but loopback.
die "serve.pl: $address is not in 127.0.0.0/8\n" unless $address =~ /^127\.\d+\.\d+\.\d+$/;

my (%kind, %tcp_of);
my $select = IO::Select->new;
for my $spec (@specs) {
    my ($proto, $port) = split /:/, $spec;
    my @types = ($proto eq 'dns' || $proto eq 'sip') ? ('udp', 'tcp') : ('tcp');
    for my $type (@types) {
        my $socket;
        # A listener of the last run may take a moment to go.
        for my $try (1 .. 30) {
            $socket = IO::Socket::INET->new(
                LocalAddr => $address, LocalPort => $port, Proto => $type,
                ($type eq 'tcp' ? (Listen => 16, ReuseAddr => 1) : ()),
            );
            last if $socket || !$!{EADDRINUSE};
            select(undef, undef, undef, 0.1);
        }
        unless ($socket) {
            my $why = "$!";
            $why .= " (ports below 1024 need root, or sysctl net.ipv4.ip_unprivileged_port_start=0)"
                if $!{EACCES};
            $why .= " (another simulation? `sim reset` with its RUNBOOK_SIM_STATE)" if $!{EADDRINUSE};
            die "sim: $name cannot listen on $type $address:$port: $why\n";
        }
        $kind{fileno $socket} = [$proto, $type, $port];
        $select->add($socket);
    }
}

my $pidfile = "$state/run/$name.pid";
unlink $pidfile;
defined(my $pid = fork) or die "sim: fork: $!\n";
if ($pid) {
    # Returns once the listener is in place, so that a probe right after
    # `systemctl start` finds it.
    select(undef, undef, undef, 0.02) until -e $pidfile || waitpid($pid, POSIX::WNOHANG()) > 0;
    exit(-e $pidfile ? 0 : 1);
}
POSIX::setsid();
open STDIN, '<', '/dev/null';
open STDOUT, '>', '/dev/null';
open STDERR, '>', '/dev/null';
open my $fh, '>', "$pidfile.new" or exit 1;
print $fh "$$\n";
close $fh;
rename "$pidfile.new", $pidfile or exit 1;

while (-e $pidfile) {
    for my $socket ($select->can_read(1)) {
        my ($proto, $type, $port) = @{ $kind{fileno $socket} };
        if ($type eq 'udp') {
            my $from = $socket->recv(my $packet, 65535) or next;
            my $reply = $proto eq 'dns' ? dns($packet) : sip($packet);
            $socket->send($reply, 0, $from) if defined $reply;
            next;
        }
        my $client = $socket->accept or next;
        # One short conversation at a time; a silent client is dropped.
        eval {
            local $SIG{ALRM} = sub { die "timeout\n" };
            alarm 5;
            converse($client, $proto, $port);
            alarm 0;
        };
        alarm 0;
        close $client;
    }
}

sub converse {
    my ($c, $proto, $port) = @_;
    binmode $c;
    if ($proto eq 'tcp') {
        return;
    } elsif ($proto eq 'dns') {
        read($c, my $length, 2) == 2 or return;
        read($c, my $query, unpack('n', $length)) or return;
        my $reply = dns($query) // return;
        print $c pack('n', length $reply), $reply;
    } elsif ($proto eq 'smtp') {
        # The state folder tells which simulation this is.
        print $c "220 $address ESMTP (simulated $name, $state)\r\n";
        while (my $line = <$c>) {
            if ($line =~ /^(EHLO|HELO)/i) {
                print $c "250-$address\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
            } elsif ($line =~ /^QUIT/i) {
                print $c "221 2.0.0 Bye\r\n";
                return;
            } else {
                print $c "250 2.0.0 Ok\r\n";
            }
        }
    } elsif ($proto eq 'sip') {
        my $request = '';
        while (my $line = <$c>) {
            $request .= $line;
            last if $line =~ /^\r?\n$/;
        }
        my $reply = sip($request);
        print $c $reply if defined $reply;
    } elsif ($proto eq 'mllp') {
        # HL7 v2 over MLLP: <VT>message<FS><CR>, answered with an ACK.
        local $/ = "\x1c\r";
        my $message = <$c> // return;
        my ($control) = $message =~ /^\x0b?MSH\|(?:[^|]*\|){8}([^|]*)/;
        $control //= '';
        print $c "\x0bMSH|^~\\&|HIE|DC|RUNBOOK|DC|" . POSIX::strftime('%Y%m%d%H%M%S', gmtime)
            . "||ACK|$control|P|2.5\rMSA|AA|$control\r\x1c\r";
    } elsif ($proto eq 'http') {
        my $head = <$c> // return;
        while (my $line = <$c>) { last if $line =~ /^\r?\n$/ }
        my ($method, $path) = split ' ', $head;
        $path //= '/';
        $path =~ s/\?.*//;
        (my $file = $path) =~ s/[^A-Za-z0-9._-]/_/g;
        my $page = "$state/www/$address:$port/$file";
        my ($status, $body) = ('404 Not Found', "not found\n");
        if (open my $f, '<', $page) {
            local $/;
            ($status, $body) = ('200 OK', <$f>);
        }
        $body = '' if $method eq 'HEAD';
        print $c "HTTP/1.0 $status\r\nServer: $name (simulated)\r\nContent-Type: text/plain\r\n"
            . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
    }
}

# A SIP request's answer: 200 OK with the headers RFC 3261 8.2.6.2 copies.
sub sip {
    my ($request) = @_;
    return undef unless $request =~ /^[A-Z]+ sip:/;
    my $reply = "SIP/2.0 200 OK\r\n";
    for my $header (qw(Via From To Call-ID CSeq)) {
        $reply .= "$1\r\n" while $request =~ /^($header:[^\r\n]*)/mgi;
    }
    return $reply . "Server: $name (simulated)\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\nContent-Length: 0\r\n\r\n";
}

# The zone the simulated resolvers serve (the names the runbook asks).
my %zone;
sub zone {
    return \%zone if %zone;
    my $file = "$state/zone";
    open my $f, '<', $file or return \%zone;
    while (<$f>) {
        my ($owner, $type, @data) = split;
        push @{ $zone{lc $owner}{$type} }, [@data] if $type;
    }
    return \%zone;
}

sub encode_name {
    join('', map { chr(length) . $_ } split /\./, shift) . "\0";
}

# One answer to one DNS query: A and SRV from the zone, NXDOMAIN for a
# name it does not hold, an empty NOERROR for another type.
sub dns {
    my ($query) = @_;
    return undef if length $query < 12;
    my ($id, $flags, $qdcount) = unpack 'n n n', $query;
    return undef if $qdcount != 1;
    my ($offset, @labels) = (12);
    while ((my $len = ord substr($query, $offset, 1)) > 0) {
        return undef if $len > 63 || $offset + $len >= length $query;
        push @labels, substr($query, $offset + 1, $len);
        $offset += $len + 1;
    }
    my $question = substr($query, 12, $offset + 5 - 12);
    my ($qtype) = unpack 'n', substr($query, $offset + 1, 2);
    my $qname = lc join '.', @labels;
    my $records = zone()->{$qname};
    my $rcode = $records ? 0 : 3;
    $records //= {};
    my $rd = $flags & 0x0100;
    my @answers;
    my %types = (1 => 'A', 33 => 'SRV');
    for my $data (@{ $records->{ $types{$qtype} // '' } // [] }) {
        my $rdata = $qtype == 1
            ? pack('C4', split /\./, $data->[0])
            : pack('n n n', @$data[0 .. 2]) . encode_name($data->[3]);
        push @answers, pack('n n n N n', 0xc00c, $qtype, 1, 60, length $rdata) . $rdata;
    }
    return pack('n n n n n n', $id, 0x8400 | $rd | 0x0080 | $rcode, 1, scalar @answers, 0, 0)
        . $question . join('', @answers);
}
