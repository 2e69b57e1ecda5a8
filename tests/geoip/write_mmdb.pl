#!/usr/bin/perl
# SPDX-License-Identifier: Apache-2.0
# write_mmdb.pl -- writes a MaxMind DB (.mmdb) for tests and benchmarks with
# Debian's libmaxmind-db-writer-perl; no database is ever downloaded.
#
#   write_mmdb.pl spec.json out.mmdb
#       spec: {"ip_version": 6, "alias_ipv6_to_ipv4": false,
#              "networks": [{"cidr": "203.0.112.0/20", "country": "JP",
#                            "continent": "AS", "subdivisions": ["13"],
#                            "location": [35.68, 139.69]}, ...]}
#       Later entries win where they overlap (a nested network splits the
#       one around it, as in real databases).
#   write_mmdb.pl --bench N out.mmdb
#       N IPv4 /24s from 1.0.0.0 up, spread over 240 countries with
#       coordinates, plus N/8 IPv6 /48s: a full-size database.
use strict;
use warnings;
use JSON::PP;
use MaxMind::DB::Writer::Tree;

my %types = (
    country      => 'map',
    continent    => 'map',
    location     => 'map',
    subdivisions => [ 'array', 'map' ],
    iso_code     => 'utf8_string',
    code         => 'utf8_string',
    latitude     => 'double',
    longitude    => 'double',
);

sub tree {
    my ($ipv, $alias) = @_;
    return MaxMind::DB::Writer::Tree->new(
        ip_version            => $ipv,
        record_size           => 28,
        database_type         => 'fedgslb-test-City',
        languages             => ['en'],
        description           => { en => 'fedgslb test database' },
        map_key_type_callback => sub { $types{ $_[0] } },
        merge_strategy        => 'none',
        alias_ipv6_to_ipv4    => $alias ? 1 : 0,
        remove_reserved_networks => 0,
    );
}

sub record {
    my ($n) = @_;
    my %r;
    $r{country}   = { iso_code => $n->{country} }  if defined $n->{country};
    $r{continent} = { code     => $n->{continent} } if defined $n->{continent};
    $r{subdivisions} = [ map { { iso_code => $_ } } @{ $n->{subdivisions} } ]
        if defined $n->{subdivisions};
    $r{location} = { latitude => $n->{location}[0] + 0.0, longitude => $n->{location}[1] + 0.0 }
        if defined $n->{location};
    return \%r;
}

my $t;
if ($ARGV[0] eq '--bench') {
    my $n = $ARGV[1];
    $t = tree(6, 1);
    my @cont = qw(AF AS EU NA OC SA);
    for my $i (0 .. $n - 1) {
        my $v  = (1 << 24) + $i * 256;    # 1.0.0.0 + i * 256: /24s
        my $ip = join('.', ($v >> 24) & 255, ($v >> 16) & 255, ($v >> 8) & 255, 0);
        my $c  = $i % 240;
        my $cc = chr(65 + int($c / 26) % 26) . chr(65 + $c % 26);
        $t->insert_network("$ip/24", record({ country => $cc, continent => $cont[$c % 6],
            location => [ -60 + ($c * 7) % 120, -180 + ($c * 37) % 360 ] }));
    }
    for my $i (0 .. int($n / 8) - 1) {
        my $ip = sprintf('2a%02x:%x::', ($i >> 16) & 255, $i & 0xffff);
        my $c = $i % 240;
        $t->insert_network("$ip/48", record({ country => chr(65 + $c % 26) . 'Z',
            location => [ -60 + ($c * 11) % 120, -180 + ($c * 13) % 360 ] }));
    }
    $ARGV[1] = $ARGV[2];
} else {
    open(my $in, '<', $ARGV[0]) or die "$ARGV[0]: $!";
    my $spec = decode_json(do { local $/; <$in> });
    $t = tree($spec->{ip_version} // 6, $spec->{alias_ipv6_to_ipv4});
    $t->insert_network($_->{cidr}, record($_)) for @{ $spec->{networks} };
}
open(my $out, '>:raw', $ARGV[1]) or die "$ARGV[1]: $!";
$t->write_tree($out);
close($out) or die "$ARGV[1]: $!";
