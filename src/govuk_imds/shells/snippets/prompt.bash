# govuk-imds prompt segment for bash. In ~/.bashrc, after PS1 is set:  eval "$(govuk-imds prompt bash)"
# In a shell that `govuk-imds env`, `exec` or `shell` pointed at an environment, the prompt starts with its name,
# coloured by environment (production red, staging yellow, others green), and says "locked" while it is. It reads
# one small file the daemon keeps current, with bash's builtins: no program starts at a prompt.
__govuk_imds_segment() {
    local last=$? state= ends= rest now= colour label
    __govuk_imds_ps1=
    if [ -n "${GOVUK_IMDS_ENVIRONMENT-}" ]; then
        if [ -n "${GOVUK_IMDS_STATE_FILE-}" ] && [ -r "$GOVUK_IMDS_STATE_FILE" ]; then
            read -r state ends rest < "$GOVUK_IMDS_STATE_FILE"
        fi
        if [ "$state" = unlocked ]; then
            now=${EPOCHSECONDS-}
            [ -n "$now" ] || printf -v now '%(%s)T' -1 2>/dev/null || now=
            case $ends in
                '' | *[!0-9]*) ;;
                *) [ -n "$now" ] && [ "$ends" -le "$now" ] && state=locked ;; # the session has ended
            esac
        fi
        case $GOVUK_IMDS_ENVIRONMENT in
            production*) colour='\033[1;31m' ;;
            staging*) colour='\033[33m' ;;
            *) colour='\033[32m' ;;
        esac
        label=$GOVUK_IMDS_ENVIRONMENT
        [ "$state" = unlocked ] || label="$label locked"
        # \001 and \002 tell readline that the colour codes take no room on the line.
        printf -v __govuk_imds_ps1 '\001%b\002(%s)\001\033[0m\002 ' "$colour" "$label"
    fi
    return $last
}
case ";${PROMPT_COMMAND-};" in
    *";__govuk_imds_segment;"*) ;;
    *) PROMPT_COMMAND="__govuk_imds_segment${PROMPT_COMMAND:+;$PROMPT_COMMAND}" ;;
esac
case $PS1 in
    *'${__govuk_imds_ps1}'*) ;;
    *) PS1='${__govuk_imds_ps1}'"$PS1" ;;
esac
