# shellcheck shell=bash
# Reading CSV files such as runs.csv in awk: fields are split as RFC 4180 has them (a quoted field is read
# whole, commas and doubled quotes included; no newline inside a field). Source it; it defines:
#   csv_awk                  the text of an awk function, fields(LINE, F): LINE's fields into F[1..n], returns n;
#                            put it before a program: awk "$csv_awk"'...'
#   columns CSV NAME...      the named columns of every row of CSV, comma-separated, one row a line (the columns
#                            asked for must hold no comma); an unknown name is an error
# shellcheck disable=SC2016
csv_awk='
function fields(line, f,    n, i, c, q, s) {
    n = 0; s = ""; q = 0
    for (i = 1; i <= length(line); i++) {
        c = substr(line, i, 1)
        if (q && c == "\"") {
            if (substr(line, i + 1, 1) == "\"") { s = s c; i++ } else q = 0
        } else if (q) s = s c
        else if (c == "\"") q = 1
        else if (c == ",") { f[++n] = s; s = "" }
        else s = s c
    }
    f[++n] = s
    return n
}
'

columns() {
    local csv=$1
    shift
    awk -v want="$*" "$csv_awk"'
        NR == 1 {
            n = fields($0, head)
            for (i = 1; i <= n; i++) at[head[i]] = i
            k = split(want, w, " ")
            for (j = 1; j <= k; j++)
                if (!(w[j] in at)) { print "columns: no column " w[j] > "/dev/stderr"; exit 1 }
            next
        }
        {
            split("", f)
            fields($0, f)
            line = f[at[w[1]]]
            for (j = 2; j <= k; j++) line = line "," f[at[w[j]]]
            print line
        }' "$csv"
}
