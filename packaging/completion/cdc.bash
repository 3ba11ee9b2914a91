# bash completion for cdc(1): the commands, each command's options (those
# `cdc COMMAND --help` lists) and YAML files where a pipeline or platform
# file goes.  `make install` puts it where bash-completion loads it on
# demand; sourcing it works too.  tests/integration/test_packaging.py checks
# it against the binary's help.

# YAML files and directories matching $1.
_cdc_files() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -d -- "$1"; compgen -f -X '!*.yaml' -- "$1"; compgen -f -X '!*.yml' -- "$1")
}

_cdc() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local opts
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "validate run deploy undeploy health status pause resume snapshot schema dlq consume lakehouse --help --version" -- "$cur")
        return
    fi
    case $prev in
        --platform-config)
            _cdc_files "$cur"
            return
            ;;
        --role)
            mapfile -t COMPREPLY < <(compgen -W "capture deliver" -- "$cur")
            return
            ;;
        --stop-at-lsn | --table | --url | --sink | --id | --max-events | --topic | --sink-id | \
            --snapshot-id | --limit)
            return # a value cdc cannot guess
            ;;
    esac
    case ${COMP_WORDS[1]} in
        validate | deploy) opts="--platform-config" ;;
        consume) opts="--platform-config --max-events --from-beginning --topic" ;;
        run) opts="--platform-config --stop-at-lsn --role" ;;
        undeploy) opts="--platform-config --yes" ;;
        health | pause | resume) opts="--platform-config --url" ;;
        status) opts="--platform-config --url --json" ;;
        snapshot) opts="--platform-config --table" ;;
        schema) opts="--platform-config --table --json" ;;
        dlq)
            if ((COMP_CWORD == 2)); then
                mapfile -t COMPREPLY < <(compgen -W "list show replay purge --help" -- "$cur")
                return
            fi
            case ${COMP_WORDS[2]} in
                list) opts="--platform-config --sink --all --json --role" ;;
                show) opts="--platform-config --id --role" ;;
                replay) opts="--platform-config --sink --id --role" ;;
                purge) opts="--platform-config --all --yes --role" ;;
                *) return ;;
            esac
            ;;
        lakehouse)
            if ((COMP_CWORD == 2)); then
                mapfile -t COMPREPLY < <(compgen -W "snapshots query rollback maintain --help" -- "$cur")
                return
            fi
            case ${COMP_WORDS[2]} in
                snapshots | maintain) opts="--platform-config --sink-id --table" ;;
                query) opts="--platform-config --sink-id --table --snapshot-id --limit" ;;
                rollback) opts="--platform-config --sink-id --table --snapshot-id --yes" ;;
                *) return ;;
            esac
            ;;
        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts --help" -- "$cur")
    else
        _cdc_files "$cur"
    fi
}

complete -F _cdc cdc
